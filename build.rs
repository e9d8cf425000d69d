//! Records the git commit the binary is built from, for `riskwatch --version`.

fn main() {
    let commit = std::env::var("RISKWATCH_GIT_COMMIT").ok().or_else(|| {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        let dirty = std::process::Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .output()
            .ok()
            .is_some_and(|o| !o.stdout.is_empty());
        let hash = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (!hash.is_empty()).then(|| if dirty { format!("{hash}-dirty") } else { hash })
    });
    println!(
        "cargo:rustc-env=RISKWATCH_GIT_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
    println!("cargo:rerun-if-env-changed=RISKWATCH_GIT_COMMIT");
    for path in [".git/HEAD", ".git/index"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
