//! Compact event records, their identifiers, and rendering them as NDJSON lines.
//!
//! Events are held as small fixed-size structs (no strings) and rendered only when a day
//! is written: identifiers are codes that render to hash-looking strings through a
//! per-seed bijection, so two customers never share an identifier by accident.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::archetypes::Customer;
use super::records::{
    own, Beh, BehType, Channel, CustRec, DayBufs, LoanEv, Txn, TxnType, KIND, MCC, OWN, REVOLVING,
    RING,
};
use super::rng::mix;

/// Renders identifiers and records into a reused byte buffer.
pub(crate) struct Render {
    buf: Vec<u8>,
    dev_key: u64,
    phone_key: u64,
    ip_key: u32,
    id_width: usize,
}

impl Render {
    /// A renderer for a book of `customers` generated with `seed`.
    pub fn new(seed: u64, customers: u64) -> Render {
        let digits = customers.max(1).to_string().len();
        Render {
            buf: Vec::with_capacity(1 << 20),
            dev_key: mix(seed ^ 0xde71_ce00),
            phone_key: mix(seed ^ 0x9401_e000),
            ip_key: (mix(seed ^ 0x1f) & 0x0fff_ffff) as u32,
            id_width: digits.max(7),
        }
    }

    fn s(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn u(&mut self, mut n: u64) {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&tmp[i..]);
    }

    fn padded(&mut self, n: u64, width: usize) {
        let mut tmp = [b'0'; 24];
        let mut i = tmp.len();
        let mut n = n;
        loop {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let start = (tmp.len() - width.min(20)).min(i);
        self.buf.extend_from_slice(&tmp[start..]);
    }

    fn hex16(&mut self, x: u64) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for i in (0..16).rev() {
            self.buf.push(HEX[((x >> (i * 4)) & 15) as usize]);
        }
    }

    fn customer_id(&mut self, cust: u32) {
        self.s("\"C");
        self.padded(cust as u64, self.id_width);
        self.s("\"");
    }

    fn loan_id(&mut self, cust: u32, loan: u8) {
        self.s("\"L");
        self.padded(cust as u64, self.id_width);
        if loan == REVOLVING {
            self.s("-R\"");
        } else {
            self.s("-");
            self.u(loan as u64);
            self.s("\"");
        }
    }

    fn device(&mut self, code: u32) {
        self.s(",\"device_id\":\"d");
        self.hex16(mix(code as u64 ^ self.dev_key));
        self.s("\"");
    }

    fn phone(&mut self, code: u32) {
        self.s(",\"phone_hash\":\"");
        self.hex16(mix(code as u64 ^ self.phone_key));
        self.s("\"");
    }

    fn ip(&mut self, code: u32) {
        const FIRST: [u64; 16] = [
            36, 39, 42, 49, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115,
        ];
        self.s(",\"ip\":\"");
        let n = code & !KIND;
        let (a, rest) = match code & KIND {
            OWN => {
                let x = scramble28(n ^ self.ip_key);
                (FIRST[(x >> 24) as usize], x & 0xff_ffff)
            }
            RING => (45, scramble28(n ^ self.ip_key) & 0xff_ffff),
            _ => (223, 104 << 16 | (1 + n / 250) << 8 | (1 + n % 250)),
        };
        self.u(a);
        for shift in [16, 8, 0] {
            self.s(".");
            self.u((rest >> shift & 0xff) as u64);
        }
        self.s("\"");
    }

    fn head(&mut self, prefix: &str, id: u64, cust: u32) {
        self.s("{\"event_id\":\"");
        self.s(prefix);
        self.padded(id, 9);
        self.s("\",\"customer_id\":");
        self.customer_id(cust);
    }

    /// Renders a transaction with event number `id`.
    pub fn txn(&mut self, e: &Txn, id: u64) {
        self.head("T", id, e.cust);
        if e.loan != 0 {
            self.s(",\"loan_id\":");
            self.loan_id(e.cust, e.loan);
        }
        self.s(",\"ts\":");
        self.u(e.ts);
        self.s(",\"type\":\"");
        self.s(e.kind.name());
        self.s("\",\"amount\":");
        self.u(e.amount);
        self.s(",\"currency\":\"CNY\",\"status\":\"");
        self.s(if e.declined { "declined" } else { "approved" });
        self.s("\"");
        if e.merchant != 0 {
            let m = e.merchant - 1;
            self.s(",\"merchant_id\":\"M");
            self.padded(m as u64, 6);
            self.s("\",\"mcc\":\"");
            self.s(MCC[(m % MCC.len() as u32) as usize]);
            self.s("\"");
        } else if e.kind == TxnType::CashWithdrawal {
            self.s(",\"mcc\":\"6011\"");
        }
        let channel = match e.channel {
            Channel::None => "",
            Channel::App => "app",
            Channel::Pos => "pos",
            Channel::Online => "online",
            Channel::Atm => "atm",
        };
        if !channel.is_empty() {
            self.s(",\"channel\":\"");
            self.s(channel);
            self.s("\"");
        }
        if e.device != 0 {
            self.device(e.device);
        }
        if e.ip != 0 {
            self.ip(e.ip);
        }
        self.s("}\n");
    }

    /// Renders a behaviour event with event number `id`.
    pub fn beh(&mut self, e: &Beh, id: u64) {
        self.head("B", id, e.cust);
        self.s(",\"ts\":");
        self.u(e.ts);
        self.s(",\"type\":\"");
        self.s(e.kind.name());
        self.s("\"");
        if e.device != 0 {
            self.device(e.device);
        }
        if e.ip != 0 {
            self.ip(e.ip);
        }
        if e.phone != 0 {
            self.phone(e.phone);
        }
        match e.kind {
            BehType::CreditInquiry if e.arg != 0 => {
                self.s(",\"lender_id\":\"LND");
                self.padded((e.arg - 1) as u64, 3);
                self.s("\"");
            }
            BehType::CollectionContact => {
                self.s(if e.arg == 2 {
                    ",\"attrs\":{\"channel\":\"call\"}"
                } else {
                    ",\"attrs\":{\"channel\":\"sms\"}"
                });
            }
            _ => {}
        }
        self.s("}\n");
    }

    /// Renders a loan schedule event with event number `id`.
    pub fn loan(&mut self, e: &LoanEv, id: u64) {
        self.head("L", id, e.cust);
        self.s(",\"loan_id\":");
        self.loan_id(e.cust, e.loan);
        self.s(",\"ts\":");
        self.u(e.ts);
        if e.no == 0 {
            self.s(",\"type\":\"written_off\"}\n");
            return;
        }
        self.s(",\"type\":\"installment_due\",\"installment_no\":");
        self.u(e.no as u64);
        self.s(",\"amount\":");
        self.u(e.amount);
        self.s(",\"due_ts\":");
        self.u(e.due_ts);
        self.s("}\n");
    }

    /// Renders a customers record.
    pub fn cust(&mut self, e: &CustRec) {
        self.s("{\"customer_id\":");
        self.customer_id(e.cust);
        self.s(",\"ts\":");
        self.u(e.ts);
        self.s(",\"credit_limit\":");
        self.u(e.limit);
        self.s(",\"apr_bps\":");
        self.u(e.apr_bps as u64);
        self.s(",\"product\":\"revolving\",\"segment\":\"");
        self.s(e.segment);
        self.s("\",\"status\":\"active\",\"opened_at\":");
        self.u(e.opened_at);
        self.phone(own(e.cust, 0));
        if e.first {
            self.s(",\"balance\":");
            self.u(e.balance);
        }
        self.s("}\n");
    }

    /// Renders a truth line.
    pub fn truth(&mut self, cust: u32, c: &Customer, defaults_at: Option<u64>) {
        self.s("{\"customer_id\":");
        self.customer_id(cust);
        self.s(",\"archetype\":\"");
        self.s(c.arch.name());
        self.s("\",\"defaults_at\":");
        match defaults_at {
            Some(t) => self.u(t),
            None => self.s("null"),
        }
        if c.ring == 0 {
            self.s(",\"ring_id\":null}\n");
        } else {
            self.s(",\"ring_id\":\"R");
            self.padded(c.ring as u64, 4);
            self.s("\"}\n");
        }
    }

    /// Writes the rendered bytes out once more than `at_least` are buffered.
    pub fn flush_to(&mut self, w: &mut impl Write, at_least: usize) -> io::Result<()> {
        if self.buf.len() >= at_least {
            w.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// Bijective scramble of 28-bit numbers (odd multiplications and xor-shifts mod 2^28).
fn scramble28(x: u32) -> u32 {
    const M: u32 = 0x0fff_ffff;
    let mut x = x & M;
    x = x.wrapping_mul(0x09e3_779b) & M;
    x ^= x >> 13;
    x = x.wrapping_mul(0x0585_1f4f) & M;
    x ^= x >> 11;
    x
}

/// The four event files and their running event numbers.
pub(crate) struct Files {
    txns: BufWriter<File>,
    behs: BufWriter<File>,
    loans: BufWriter<File>,
    custs: BufWriter<File>,
    /// Events written per stream: transactions, behaviors, loans, customers.
    pub counts: [u64; 4],
}

impl Files {
    /// Creates (truncates) the four event files in `dir`.
    pub fn create(dir: &Path) -> io::Result<Files> {
        let open = |name: &str| -> io::Result<BufWriter<File>> {
            Ok(BufWriter::with_capacity(
                1 << 20,
                File::create(dir.join(name))?,
            ))
        };
        Ok(Files {
            txns: open("transactions.ndjson")?,
            behs: open("behaviors.ndjson")?,
            loans: open("loans.ndjson")?,
            custs: open("customers.ndjson")?,
            counts: [0; 4],
        })
    }

    /// Writes one day's sorted events; event ids continue from the previous day.
    pub fn write_day(&mut self, r: &mut Render, day: &DayBufs) -> io::Result<()> {
        const CHUNK: usize = 1 << 20;
        for e in &day.txns {
            self.counts[0] += 1;
            r.txn(e, self.counts[0]);
            r.flush_to(&mut self.txns, CHUNK)?;
        }
        r.flush_to(&mut self.txns, 0)?;
        for e in &day.behs {
            self.counts[1] += 1;
            r.beh(e, self.counts[1]);
            r.flush_to(&mut self.behs, CHUNK)?;
        }
        r.flush_to(&mut self.behs, 0)?;
        for e in &day.loans {
            self.counts[2] += 1;
            r.loan(e, self.counts[2]);
            r.flush_to(&mut self.loans, CHUNK)?;
        }
        r.flush_to(&mut self.loans, 0)?;
        for e in &day.custs {
            self.counts[3] += 1;
            r.cust(e);
            r.flush_to(&mut self.custs, CHUNK)?;
        }
        r.flush_to(&mut self.custs, 0)
    }

    /// Flushes all files.
    pub fn finish(mut self) -> io::Result<[u64; 4]> {
        self.txns.flush()?;
        self.behs.flush()?;
        self.loans.flush()?;
        self.custs.flush()?;
        Ok(self.counts)
    }
}
