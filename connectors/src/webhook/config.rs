//! From `[[webhook]]` config to a ready endpoint: its secret(s) read from the environment
//! or a file, its signer, its HTTP(S) client and its retry schedule.

use super::client::HttpClient;
use super::sign::Signer;
use crate::error::ConnectorError;
use riskwatch_model::config::WebhookConfig;
use std::path::Path;
use std::time::Duration;

/// A configured endpoint, ready to send.
#[derive(Debug)]
pub struct Endpoint {
    /// The endpoint's config.
    pub config: WebhookConfig,
    /// Its signer (every secret).
    pub signer: Signer,
    /// Its pooled client.
    pub client: HttpClient,
}

impl Endpoint {
    /// Reads the secret named by `secret_env` (from `env`, usually the process environment)
    /// or `secret_file`, and builds the client. Errors name the endpoint and the variable
    /// or file, never the secret.
    pub fn from_config(
        config: &WebhookConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Endpoint, ConnectorError> {
        let fail = |reason: String| ConnectorError::Webhook {
            endpoint: config.name.clone(),
            reason,
        };
        let secrets = match (&config.secret_env, &config.secret_file) {
            (Some(var), _) => env(var)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| fail(format!("environment variable {var} is not set")))?,
            (None, Some(file)) => std::fs::read_to_string(file)
                .map_err(|e| fail(format!("secret_file \"{file}\": {e}")))?,
            (None, None) => return Err(fail("no secret_env or secret_file".into())),
        };
        let signer = Signer::new(&secrets).map_err(fail)?;
        Endpoint::with_signer(config, signer)
    }

    /// An endpoint with an explicit signer (tests, tools).
    pub fn with_signer(config: &WebhookConfig, signer: Signer) -> Result<Endpoint, ConnectorError> {
        let client = HttpClient::new(
            &config.url,
            Duration::from_millis(config.timeout.ms()),
            config.concurrency as usize,
            config.ca_file.as_deref().map(Path::new),
        )
        .map_err(|reason| ConnectorError::Webhook {
            endpoint: config.name.clone(),
            reason,
        })?;
        Ok(Endpoint {
            config: config.clone(),
            signer,
            client,
        })
    }

    /// Every endpoint of `configs`, secrets from the process environment.
    pub fn all_from_env(configs: &[WebhookConfig]) -> Result<Vec<Endpoint>, ConnectorError> {
        configs
            .iter()
            .map(|c| Endpoint::from_config(c, |v| std::env::var(v).ok()))
            .collect()
    }
}
