//! One record per stream, minimal and full, and every kind name.

use super::*;

#[test]
fn transaction_minimal_and_full() {
    assert_eq!(
        ok(Stream::Transactions, TXN_MIN),
        ev(
            1700000000000,
            "C1",
            id_hash("E1"),
            Body::Transaction(Transaction {
                kind: TxnKind::Purchase,
                approved: true,
                amount: 12345,
                loan_id: None,
                merchant: 0,
                device: 0,
                ip: 0,
            })
        )
    );
    assert_eq!(
        ok(Stream::Transactions, TXN_FULL),
        ev(
            1700000000001,
            "C1",
            id_hash("E2"),
            Body::Transaction(Transaction {
                kind: TxnKind::Repayment,
                approved: false,
                amount: 500,
                loan_id: Some(CompactString::from("L1")),
                merchant: id_hash("M1"),
                device: id_hash("D1"),
                ip: id_hash("10.0.0.1"),
            })
        )
    );
    let approved = with(TXN_MIN, "status", r#""approved""#);
    let Body::Transaction(t) = ok(Stream::Transactions, &approved).body else {
        panic!()
    };
    assert!(t.approved);
}

#[test]
fn behavior_minimal_and_full() {
    assert_eq!(
        ok(Stream::Behaviors, BEH_MIN),
        ev(
            1700000000002,
            "C2",
            id_hash("B1"),
            Body::Behavior(Behavior {
                kind: BehaviorKind::Login,
                device: 0,
                ip: 0,
                phone: 0,
                lender: 0,
            })
        )
    );
    assert_eq!(
        ok(Stream::Behaviors, BEH_FULL),
        ev(
            1700000000003,
            "C2",
            id_hash("B2"),
            Body::Behavior(Behavior {
                kind: BehaviorKind::CreditInquiry,
                device: id_hash("D2"),
                ip: id_hash("::1"),
                phone: id_hash("P2"),
                lender: id_hash("LEN2"),
            })
        )
    );
}

#[test]
fn loan_minimal_and_full() {
    assert_eq!(
        ok(Stream::Loans, LOAN_MIN),
        ev(
            1700000000004,
            "C3",
            id_hash("LE1"),
            Body::Loan(LoanEvent {
                kind: LoanKind::Settled,
                loan_id: CompactString::from("L3"),
                installment_no: 0,
                due_ts: 0,
                amount: 0,
            })
        )
    );
    assert_eq!(
        ok(Stream::Loans, LOAN_FULL),
        ev(
            1700000000005,
            "C3",
            id_hash("LE2"),
            Body::Loan(LoanEvent {
                kind: LoanKind::InstallmentDue,
                loan_id: CompactString::from("L3"),
                installment_no: 2,
                due_ts: 1702591999999,
                amount: 100000,
            })
        )
    );
    let off = with(LOAN_MIN, "type", r#""written_off""#);
    let Body::Loan(l) = ok(Stream::Loans, &off).body else {
        panic!()
    };
    assert_eq!(l.kind, LoanKind::WrittenOff);
    // installment_no is optional even for installment_due.
    let due = without(LOAN_FULL, "installment_no");
    let Body::Loan(l) = ok(Stream::Loans, &due).body else {
        panic!()
    };
    assert_eq!((l.installment_no, l.amount), (0, 100000));
}

#[test]
fn customer_minimal_and_full() {
    assert_eq!(
        ok(Stream::Customers, CUST_MIN),
        ev(
            1700000000006,
            "C4",
            0,
            Body::Customer(CustomerRecord {
                credit_limit: 5000000,
                apr_bps: 1800,
                status: CustomerStatus::Active,
                balance: None,
                phone: 0,
            })
        )
    );
    assert_eq!(
        ok(Stream::Customers, CUST_FULL),
        ev(
            1700000000007,
            "C4",
            0,
            Body::Customer(CustomerRecord {
                credit_limit: 0,
                apr_bps: 100000,
                status: CustomerStatus::Frozen,
                balance: Some(250000),
                phone: id_hash("P4"),
            })
        )
    );
    let closed = with(CUST_MIN, "status", r#""closed""#);
    let Body::Customer(c) = ok(Stream::Customers, &closed).body else {
        panic!()
    };
    assert_eq!(c.status, CustomerStatus::Closed);
}

#[test]
fn every_kind_name_decodes() {
    for k in TxnKind::ALL {
        let line = with(TXN_MIN, "type", &format!("\"{}\"", k.name()));
        let Body::Transaction(t) = ok(Stream::Transactions, &line).body else {
            panic!()
        };
        assert_eq!(t.kind, k);
    }
    for k in BehaviorKind::ALL {
        let line = with(BEH_MIN, "type", &format!("\"{}\"", k.name()));
        let Body::Behavior(b) = ok(Stream::Behaviors, &line).body else {
            panic!()
        };
        assert_eq!(b.kind, k);
    }
}
