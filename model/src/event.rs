//! Decoded input events: the compact, typed form of the four input streams that flows
//! through the dataflow.
//!
//! Strings that only need equality (event ids, merchants, devices, IPs, phone hashes,
//! lenders) are carried as 64-bit xxh3 hashes; strings that appear in outputs or need
//! ordering (customer ids, loan ids) are carried as [`CompactString`], which stores up to
//! 24 bytes inline, so a typical event costs no heap allocation.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Hash of an identifier string with a fixed algorithm (xxh3-64, seed 0).
///
/// Stable across processes, runs and platforms; never Rust's randomised default hasher.
/// `0` is reserved for "absent", so a string that hashes to 0 is mapped to 1.
#[inline]
pub fn id_hash(s: &str) -> u64 {
    match xxhash_rust::xxh3::xxh3_64(s.as_bytes()) {
        0 => 1,
        h => h,
    }
}

/// The four input streams, in the order used to break ties between events with the same
/// timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stream {
    /// `customers`: reference records (limit, APR, status, balance bootstrap).
    Customers = 0,
    /// `loans`: installment schedule, settlements and write-offs.
    Loans = 1,
    /// `transactions`: money movements.
    Transactions = 2,
    /// `behaviors`: logins, identity changes, bureau inquiries.
    Behaviors = 3,
}

impl Stream {
    /// All streams, in tie-break order.
    pub const ALL: [Stream; 4] = [
        Stream::Customers,
        Stream::Loans,
        Stream::Transactions,
        Stream::Behaviors,
    ];

    /// The stream's name as used for files (`NAME.ndjson`), topics and the `source` field
    /// of rejected records.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Customers => "customers",
            Stream::Loans => "loans",
            Stream::Transactions => "transactions",
            Stream::Behaviors => "behaviors",
        }
    }

    /// The stream for a name, if it is one of the four.
    pub fn from_name(name: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Transaction types of `transaction.schema.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TxnKind {
    /// Card or account purchase.
    Purchase,
    /// Cash withdrawal (cash advance).
    CashWithdrawal,
    /// Transfer out of the account.
    TransferOut,
    /// Transfer into the account.
    TransferIn,
    /// Salary credited to the account.
    SalaryCredit,
    /// Repayment of a loan or of the revolving balance.
    Repayment,
    /// Merchant refund.
    Refund,
    /// Loan drawdown.
    Drawdown,
    /// Fee charged.
    Fee,
}

impl TxnKind {
    /// All kinds, in schema order.
    pub const ALL: [TxnKind; 9] = [
        TxnKind::Purchase,
        TxnKind::CashWithdrawal,
        TxnKind::TransferOut,
        TxnKind::TransferIn,
        TxnKind::SalaryCredit,
        TxnKind::Repayment,
        TxnKind::Refund,
        TxnKind::Drawdown,
        TxnKind::Fee,
    ];

    /// The contract name of the kind.
    pub fn name(self) -> &'static str {
        match self {
            TxnKind::Purchase => "purchase",
            TxnKind::CashWithdrawal => "cash_withdrawal",
            TxnKind::TransferOut => "transfer_out",
            TxnKind::TransferIn => "transfer_in",
            TxnKind::SalaryCredit => "salary_credit",
            TxnKind::Repayment => "repayment",
            TxnKind::Refund => "refund",
            TxnKind::Drawdown => "drawdown",
            TxnKind::Fee => "fee",
        }
    }

    /// The kind for a contract name.
    pub fn from_name(name: &str) -> Option<TxnKind> {
        TxnKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Behaviour event types of `behavior.schema.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BehaviorKind {
    /// Successful login.
    Login,
    /// Failed login.
    LoginFailed,
    /// Password reset.
    PasswordReset,
    /// A device was bound to the account.
    DeviceBound,
    /// The phone number changed.
    PhoneChanged,
    /// An emergency contact changed.
    ContactChanged,
    /// Another lender queried the bureau.
    CreditInquiry,
    /// App opened.
    AppOpen,
    /// The customer looked at the available limit.
    LimitViewed,
    /// A collector contacted the customer.
    CollectionContact,
    /// The customer promised to pay.
    PromiseToPay,
    /// The customer complained.
    Complaint,
}

impl BehaviorKind {
    /// All kinds, in schema order.
    pub const ALL: [BehaviorKind; 12] = [
        BehaviorKind::Login,
        BehaviorKind::LoginFailed,
        BehaviorKind::PasswordReset,
        BehaviorKind::DeviceBound,
        BehaviorKind::PhoneChanged,
        BehaviorKind::ContactChanged,
        BehaviorKind::CreditInquiry,
        BehaviorKind::AppOpen,
        BehaviorKind::LimitViewed,
        BehaviorKind::CollectionContact,
        BehaviorKind::PromiseToPay,
        BehaviorKind::Complaint,
    ];

    /// The contract name of the kind.
    pub fn name(self) -> &'static str {
        match self {
            BehaviorKind::Login => "login",
            BehaviorKind::LoginFailed => "login_failed",
            BehaviorKind::PasswordReset => "password_reset",
            BehaviorKind::DeviceBound => "device_bound",
            BehaviorKind::PhoneChanged => "phone_changed",
            BehaviorKind::ContactChanged => "contact_changed",
            BehaviorKind::CreditInquiry => "credit_inquiry",
            BehaviorKind::AppOpen => "app_open",
            BehaviorKind::LimitViewed => "limit_viewed",
            BehaviorKind::CollectionContact => "collection_contact",
            BehaviorKind::PromiseToPay => "promise_to_pay",
            BehaviorKind::Complaint => "complaint",
        }
    }

    /// The kind for a contract name.
    pub fn from_name(name: &str) -> Option<BehaviorKind> {
        BehaviorKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Loan schedule event types of `loan.schema.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LoanKind {
    /// An installment falls due (or a re-published installment replaces an older one).
    InstallmentDue,
    /// The loan's remaining installments are cleared.
    Settled,
    /// The loan is written off; its debt stays and keeps ageing.
    WrittenOff,
}

impl LoanKind {
    /// The contract name of the kind.
    pub fn name(self) -> &'static str {
        match self {
            LoanKind::InstallmentDue => "installment_due",
            LoanKind::Settled => "settled",
            LoanKind::WrittenOff => "written_off",
        }
    }
}

/// Customer status of `customer.schema.json`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum CustomerStatus {
    /// Monitored as usual.
    #[default]
    Active,
    /// New draws blocked by the lender.
    Frozen,
    /// Tombstone: the customer leaves monitoring.
    Closed,
}

/// A decoded transaction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Transaction {
    /// The transaction type.
    pub kind: TxnKind,
    /// `status` is approved (the default) rather than declined.
    pub approved: bool,
    /// Amount in minor units.
    pub amount: u64,
    /// The loan a repayment or drawdown belongs to, if named.
    pub loan_id: Option<CompactString>,
    /// Hash of `merchant_id`, 0 when absent.
    pub merchant: u64,
    /// Hash of `device_id`, 0 when absent.
    pub device: u64,
    /// Hash of `ip`, 0 when absent.
    pub ip: u64,
}

/// A decoded behaviour event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Behavior {
    /// The behaviour type.
    pub kind: BehaviorKind,
    /// Hash of `device_id`, 0 when absent.
    pub device: u64,
    /// Hash of `ip`, 0 when absent.
    pub ip: u64,
    /// Hash of `phone_hash`, 0 when absent.
    pub phone: u64,
    /// Hash of `lender_id`, 0 when absent.
    pub lender: u64,
}

/// A decoded loan schedule event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LoanEvent {
    /// The schedule event type.
    pub kind: LoanKind,
    /// The loan.
    pub loan_id: CompactString,
    /// Installment number (1-based); 0 when absent (settled, written_off).
    pub installment_no: u32,
    /// `due_ts` of an installment; 0 when absent.
    pub due_ts: u64,
    /// Installment amount in minor units; 0 when absent.
    pub amount: u64,
}

/// A decoded customer reference record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CustomerRecord {
    /// Credit limit in minor units.
    pub credit_limit: u64,
    /// APR in basis points.
    pub apr_bps: u32,
    /// Status; `closed` is a tombstone.
    pub status: CustomerStatus,
    /// Drawn balance as of `ts`, if given.
    pub balance: Option<u64>,
    /// Hash of `phone_hash`, 0 when absent.
    pub phone: u64,
}

/// The stream-specific part of an event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Body {
    /// From the transactions stream.
    Transaction(Transaction),
    /// From the behaviors stream.
    Behavior(Behavior),
    /// From the loans stream.
    Loan(LoanEvent),
    /// From the customers stream.
    Customer(CustomerRecord),
}

impl Body {
    /// The stream this body comes from.
    pub fn stream(&self) -> Stream {
        match self {
            Body::Transaction(_) => Stream::Transactions,
            Body::Behavior(_) => Stream::Behaviors,
            Body::Loan(_) => Stream::Loans,
            Body::Customer(_) => Stream::Customers,
        }
    }
}

/// One decoded input event.
///
/// Field order makes the derived `Ord` sort by event time, then by the position the source
/// assigned (`seq`), which is what makes per-customer processing deterministic regardless
/// of how events were spread over workers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Event {
    /// Event time, epoch ms (the record's `ts`).
    pub ts: u64,
    /// Source position that breaks ties between events at the same `ts`: for replay,
    /// `(stream << 48) | line`; for Kafka, derived from partition and offset.
    pub seq: u64,
    /// `id_hash(customer_id)`: the partitioning key.
    pub key: u64,
    /// The customer id as received.
    pub customer_id: CompactString,
    /// `id_hash(event_id)`; 0 for customers records, which have no event id.
    pub event_id: u64,
    /// The stream-specific fields.
    pub body: Body,
}

impl Event {
    /// The stream this event comes from.
    pub fn stream(&self) -> Stream {
        self.body.stream()
    }
}
