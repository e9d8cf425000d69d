//! Compact event records of one day and the identifier codes they carry: small
//! fixed-size structs (no strings), rendered to NDJSON only when written (see `writer`).

/// Loan number of the customer's revolving line, rendered `L…-R`.
pub(crate) const REVOLVING: u8 = 255;

/// Identifier code kinds (top two bits of a `u32` code; 0 means absent).
pub(crate) const OWN: u32 = 1 << 30;
pub(crate) const RING: u32 = 2 << 30;
pub(crate) const HUB: u32 = 3 << 30;
pub(crate) const KIND: u32 = 3 << 30;

/// A customer's own device, IP or phone `slot` (0..4).
#[inline]
pub(crate) fn own(cust: u32, slot: u32) -> u32 {
    OWN | cust << 2 | slot
}

/// Ring `ring`'s shared device, IP or phone `slot` (0..4).
#[inline]
pub(crate) fn ring_code(ring: u32, slot: u32) -> u32 {
    RING | ring << 2 | slot
}

/// Carrier-NAT hub IP number `hub`.
#[inline]
pub(crate) fn hub_code(hub: u32) -> u32 {
    HUB | hub
}

/// Transaction types (`transaction.schema.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxnType {
    Purchase,
    CashWithdrawal,
    SalaryCredit,
    TransferIn,
    Repayment,
    Refund,
    Drawdown,
    Fee,
}

impl TxnType {
    pub fn name(self) -> &'static str {
        match self {
            TxnType::Purchase => "purchase",
            TxnType::CashWithdrawal => "cash_withdrawal",
            TxnType::SalaryCredit => "salary_credit",
            TxnType::TransferIn => "transfer_in",
            TxnType::Repayment => "repayment",
            TxnType::Refund => "refund",
            TxnType::Drawdown => "drawdown",
            TxnType::Fee => "fee",
        }
    }
}

/// Behaviour types (`behavior.schema.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BehType {
    Login,
    LoginFailed,
    PasswordReset,
    DeviceBound,
    PhoneChanged,
    ContactChanged,
    CreditInquiry,
    AppOpen,
    LimitViewed,
    CollectionContact,
    PromiseToPay,
}

impl BehType {
    pub fn name(self) -> &'static str {
        match self {
            BehType::Login => "login",
            BehType::LoginFailed => "login_failed",
            BehType::PasswordReset => "password_reset",
            BehType::DeviceBound => "device_bound",
            BehType::PhoneChanged => "phone_changed",
            BehType::ContactChanged => "contact_changed",
            BehType::CreditInquiry => "credit_inquiry",
            BehType::AppOpen => "app_open",
            BehType::LimitViewed => "limit_viewed",
            BehType::CollectionContact => "collection_contact",
            BehType::PromiseToPay => "promise_to_pay",
        }
    }
}

/// Payment channels (`transaction.schema.json`); `None` omits the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Channel {
    None,
    App,
    Pos,
    Online,
    Atm,
}

/// Merchant categories: merchant `m` has category `m % MCC.len()`.
pub(crate) const MCC: [&str; 16] = [
    "5411", "5812", "5814", "5541", "4111", "5311", "5691", "5912", "4814", "5999", "7832", "4900",
    "5732", "5944", "5947", "5045",
];
/// Categories 12.. are high-value, resellable goods (electronics, jewellery, gift cards,
/// computers): what a bust-out buys.
pub(crate) const HIGH_VALUE_FROM: u32 = 12;
/// Number of merchants.
pub(crate) const MERCHANTS: u32 = 8_000;
/// Number of other lenders that query the bureau.
pub(crate) const LENDERS: u32 = 60;

/// A transaction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Txn {
    pub ts: u64,
    pub amount: u64,
    pub cust: u32,
    pub seq: u32,
    /// Merchant number + 1; 0 when absent.
    pub merchant: u32,
    pub device: u32,
    pub ip: u32,
    pub kind: TxnType,
    pub declined: bool,
    pub channel: Channel,
    /// Loan number (1..), [`REVOLVING`], or 0 when absent.
    pub loan: u8,
}

/// A behaviour event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Beh {
    pub ts: u64,
    pub cust: u32,
    pub seq: u32,
    pub device: u32,
    pub ip: u32,
    pub phone: u32,
    /// Lender number + 1 on credit inquiries; contact channel (1 sms, 2 call) on
    /// collection contacts; 0 otherwise.
    pub arg: u32,
    pub kind: BehType,
}

/// A loan schedule event: an installment due, or a write-off when `no == 0`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoanEv {
    pub ts: u64,
    pub due_ts: u64,
    pub amount: u64,
    pub cust: u32,
    pub seq: u32,
    pub no: u16,
    pub loan: u8,
}

/// A customers record; `first` carries the full bootstrap record with its balance.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CustRec {
    pub ts: u64,
    pub limit: u64,
    pub opened_at: u64,
    pub balance: u64,
    pub cust: u32,
    pub seq: u32,
    pub apr_bps: u32,
    pub segment: &'static str,
    pub first: bool,
}

/// One day's events of all customers, before sorting.
#[derive(Default)]
pub(crate) struct DayBufs {
    pub txns: Vec<Txn>,
    pub behs: Vec<Beh>,
    pub loans: Vec<LoanEv>,
    pub custs: Vec<CustRec>,
}

impl DayBufs {
    /// Sorts each stream by (ts, customer, per-customer sequence): a total, fixed order.
    pub fn sort(&mut self) {
        self.txns.sort_unstable_by_key(|e| (e.ts, e.cust, e.seq));
        self.behs.sort_unstable_by_key(|e| (e.ts, e.cust, e.seq));
        self.loans.sort_unstable_by_key(|e| (e.ts, e.cust, e.seq));
        self.custs.sort_unstable_by_key(|e| (e.ts, e.cust, e.seq));
    }

    /// Empties all streams, keeping their capacity.
    pub fn clear(&mut self) {
        self.txns.clear();
        self.behs.clear();
        self.loans.clear();
        self.custs.clear();
    }

    /// Moves another buffer's events into this one.
    pub fn append(&mut self, other: &mut DayBufs) {
        self.txns.append(&mut other.txns);
        self.behs.append(&mut other.behs);
        self.loans.append(&mut other.loans);
        self.custs.append(&mut other.custs);
    }
}
