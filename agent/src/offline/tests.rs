use std::error::Error;
use std::time::{Duration, Instant};

use argon2::Algorithm;

use super::*;

type TestResult = Result<(), Box<dyn Error>>;

/// 2025-01-01T00:00:00Z: any fixed time will do.
const T0: u64 = 1_735_689_600;
const DAY: u64 = 86_400;

fn rules() -> OfflineConfig {
    OfflineConfig {
        max_age: Duration::from_secs(14 * DAY),
        max_failures: 5,
        lockout: Duration::from_secs(300),
        probe_interval: Duration::from_secs(5),
    }
}

fn secret(text: &str) -> Secret {
    Secret::new(text.as_bytes().to_vec())
}

/// A verifier with the smallest costs Argon2 allows (8 KiB, 1 pass): microseconds per check, so
/// the rule tests can check many passwords. It also shows that the costs come from the PHC string.
fn cheap(password: &str, algorithm: Algorithm, last_online_login: u64) -> Result<Verifier, HashError> {
    let params = Params::new(8, 1, 1, None)?;
    let hash: PasswordHash = Argon2::new(algorithm, Version::V0x13, params).hash_password(password.as_bytes())?;
    Ok(Verifier { phc: hash.to_string(), last_online_login, failures: 0, locked_until: None })
}

/// The salt and hash fields of a PHC string: `$argon2id$v=19$m=..,t=..,p=..$SALT$HASH`.
fn salt_and_hash(phc: &str) -> (&str, &str) {
    let fields: Vec<&str> = phc.split('$').collect();
    assert_eq!(fields.len(), 6, "unexpected PHC layout");
    (fields[4], fields[5])
}

#[test]
fn right_password_is_accepted_and_a_wrong_one_rejected() -> TestResult {
    let mut verifier = make(&secret("correct horse"), T0)?;
    assert!(verifier.phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{:?}", verifier);
    assert_eq!(check(&mut verifier, &secret("correct horse!"), T0 + 60, &rules()), OfflineCheck::Rejected);
    assert_eq!(verifier.failures, 1);
    assert_eq!(check(&mut verifier, &secret("correct horse"), T0 + 60, &rules()), OfflineCheck::Accepted);
    assert_eq!(verifier.failures, 0, "a success clears the failures");
    assert_eq!(verifier.last_online_login, T0, "an offline success never counts as an online login");
    Ok(())
}

#[test]
fn an_empty_password_is_never_accepted_nor_counted() -> TestResult {
    assert!(matches!(make(&secret(""), T0), Err(OfflineError::EmptyPassword)));
    // Even a verifier that really is of "" refuses it.
    let mut verifier = cheap("", Algorithm::Argon2id, T0)?;
    assert_eq!(check(&mut verifier, &secret(""), T0, &rules()), OfflineCheck::Rejected);
    assert_eq!(verifier.failures, 0);
    Ok(())
}

#[test]
fn offline_login_is_refused_from_max_age_on_and_not_a_second_before() -> TestResult {
    let mut verifier = cheap("pw", Algorithm::Argon2id, T0)?;
    let last_second = T0 + 14 * DAY - 1;
    assert_eq!(check(&mut verifier, &secret("pw"), last_second, &rules()), OfflineCheck::Accepted);
    assert_eq!(check(&mut verifier, &secret("pw"), last_second + 1, &rules()), OfflineCheck::Expired);
    // An expired verifier never looks at the password: nothing is counted.
    assert_eq!(check(&mut verifier, &secret("wrong"), last_second + 1, &rules()), OfflineCheck::Expired);
    assert_eq!(verifier.failures, 0);
    let off = OfflineConfig { max_age: Duration::ZERO, ..rules() };
    assert_eq!(check(&mut verifier, &secret("pw"), T0, &off), OfflineCheck::Expired, "max_age 0 turns it off");
    Ok(())
}

#[test]
fn lockout_follows_max_failures_and_clears_after_lockout() -> TestResult {
    let mut verifier = cheap("pw", Algorithm::Argon2id, T0)?;
    for n in 1..=4 {
        assert_eq!(check(&mut verifier, &secret("guess"), T0, &rules()), OfflineCheck::Rejected);
        assert_eq!((verifier.failures, verifier.locked_until), (n, None));
    }
    // The fifth wrong password is checked, rejected, and sets the lock.
    assert_eq!(check(&mut verifier, &secret("guess"), T0 + 10, &rules()), OfflineCheck::Rejected);
    assert_eq!((verifier.failures, verifier.locked_until), (0, Some(T0 + 310)));
    // Locked: even the right password is not looked at.
    let locked = OfflineCheck::LockedOut { until: T0 + 310 };
    assert_eq!(check(&mut verifier, &secret("pw"), T0 + 309, &rules()), locked);
    // Run out: the right password works and clears everything.
    assert_eq!(check(&mut verifier, &secret("pw"), T0 + 310, &rules()), OfflineCheck::Accepted);
    assert_eq!((verifier.failures, verifier.locked_until), (0, None));
    Ok(())
}

#[test]
fn after_a_lockout_runs_out_the_user_has_max_failures_new_tries() -> TestResult {
    let mut verifier = cheap("pw", Algorithm::Argon2id, T0)?;
    verifier.locked_until = Some(T0 + 300);
    assert_eq!(check(&mut verifier, &secret("guess"), T0 + 300, &rules()), OfflineCheck::Rejected);
    assert_eq!((verifier.failures, verifier.locked_until), (1, None), "a lock that ran out is cleared");
    Ok(())
}

#[test]
fn a_wrong_password_while_locked_neither_extends_the_lock_nor_counts() -> TestResult {
    let mut verifier = cheap("pw", Algorithm::Argon2id, T0)?;
    verifier.locked_until = Some(T0 + 300);
    for now in [T0, T0 + 100, T0 + 299] {
        let answer = check(&mut verifier, &secret("guess"), now, &rules());
        assert_eq!(answer, OfflineCheck::LockedOut { until: T0 + 300 });
    }
    assert_eq!((verifier.failures, verifier.locked_until), (0, Some(T0 + 300)));
    Ok(())
}

#[test]
fn max_failures_zero_locks_after_the_first_wrong_password() -> TestResult {
    let mut verifier = cheap("pw", Algorithm::Argon2id, T0)?;
    let strict = OfflineConfig { max_failures: 0, ..rules() };
    assert_eq!(check(&mut verifier, &secret("guess"), T0, &strict), OfflineCheck::Rejected);
    assert_eq!(verifier.locked_until, Some(T0 + 300));
    Ok(())
}

#[test]
fn a_verifier_from_the_future_counts_as_made_now_and_still_expires() -> TestResult {
    // Made while the clock was a year ahead; the clock has since been set back.
    let mut verifier = cheap("pw", Algorithm::Argon2id, T0 + 365 * DAY)?;
    assert_eq!(check(&mut verifier, &secret("pw"), T0, &rules()), OfflineCheck::Accepted);
    assert_eq!(verifier.last_online_login, T0, "its age now counts from the first offline attempt");
    assert_eq!(check(&mut verifier, &secret("pw"), T0 + 14 * DAY, &rules()), OfflineCheck::Expired);
    Ok(())
}

#[test]
fn a_lockout_set_before_the_clock_was_set_back_lasts_one_lockout_at_most() -> TestResult {
    let mut verifier = cheap("pw", Algorithm::Argon2id, T0 - DAY)?;
    verifier.locked_until = Some(T0 + 30 * DAY);
    let capped = OfflineCheck::LockedOut { until: T0 + 300 };
    assert_eq!(check(&mut verifier, &secret("pw"), T0, &rules()), capped);
    assert_eq!(verifier.locked_until, Some(T0 + 300));
    // The cut is kept: checking again later does not move it on.
    assert_eq!(check(&mut verifier, &secret("pw"), T0 + 200, &rules()), capped);
    assert_eq!(check(&mut verifier, &secret("pw"), T0 + 300, &rules()), OfflineCheck::Accepted);
    Ok(())
}

#[test]
fn a_corrupted_or_foreign_phc_string_is_rejected_without_counting() -> TestResult {
    let good = cheap("pw", Algorithm::Argon2id, T0)?.phc;
    let (salt, hash) = salt_and_hash(&good);
    let broken = [
        String::new(),
        "not a phc string".to_owned(),
        good[..good.len() / 2].to_owned(),
        good.replace(hash, "!!!!"),
        good.replace(&format!("${hash}"), ""),
        good.replace("v=19", "v=16"),
        good.replace("m=8", "m=4294967295"),
        good.replace("t=1", "t=4000000000"),
        good.replace("p=1", "p=0"),
        good.replace(salt, "c2hvcnQ"),
        // A genuine argon2i verifier of the right password: Argon2 would verify it, we don't.
        cheap("pw", Algorithm::Argon2i, T0)?.phc,
        cheap("pw", Algorithm::Argon2d, T0)?.phc,
    ];
    for phc in broken {
        let mut verifier = Verifier { phc: phc.clone(), last_online_login: T0, failures: 0, locked_until: None };
        let started = Instant::now();
        assert_eq!(check(&mut verifier, &secret("pw"), T0, &rules()), OfflineCheck::Rejected, "{phc:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "{phc:?} was computed, not refused");
        assert_eq!(verifier.failures, 0, "{phc:?}");
        assert!(needs_rehash(&verifier), "{phc:?}");
        let _ = format!("{verifier:?}"); // never panics either
    }
    Ok(())
}

#[test]
fn lower_costs_still_verify_and_ask_for_a_rehash() -> TestResult {
    let mut old = cheap("pw", Algorithm::Argon2id, T0)?;
    assert_eq!(check(&mut old, &secret("pw"), T0, &rules()), OfflineCheck::Accepted);
    assert!(needs_rehash(&old));
    assert!(!needs_rehash(&make(&secret("pw"), T0)?));
    Ok(())
}

#[test]
fn two_verifiers_of_the_same_password_differ_by_their_salt() -> TestResult {
    let (a, b) = (make(&secret("same"), T0)?, make(&secret("same"), T0)?);
    let ((salt_a, hash_a), (salt_b, hash_b)) = (salt_and_hash(&a.phc), salt_and_hash(&b.phc));
    assert_ne!(salt_a, salt_b);
    assert_ne!(hash_a, hash_b);
    assert_eq!(salt_a.len(), 22, "16 bytes of salt in unpadded base64");
    Ok(())
}

#[test]
fn debug_shows_costs_and_times_but_never_the_salt_or_hash() -> TestResult {
    let mut verifier = make(&secret("pw"), T0)?;
    verifier.failures = 2;
    verifier.locked_until = Some(T0 + 300);
    let shown = format!("{verifier:?}");
    let (salt, hash) = salt_and_hash(&verifier.phc);
    assert!(!shown.contains(salt) && !shown.contains(hash), "{shown}");
    assert_eq!(
        shown,
        format!(
            "Verifier {{ algorithm: \"argon2id\", version: Some(19), m: Some(19456), t: Some(2), p: Some(1), \
             last_online_login: {T0}, failures: 2, locked_until: Some({}) }}",
            T0 + 300
        )
    );
    let unparseable = Verifier { phc: format!("$argon2id$v=19${salt}${hash}"), ..verifier };
    let shown = format!("{unparseable:?}");
    assert!(!shown.contains(salt) && !shown.contains(hash), "{shown}");
    Ok(())
}

#[test]
fn verifier_round_trips_through_postcard() -> TestResult {
    let mut verifier = cheap("pw", Algorithm::Argon2id, T0)?;
    verifier.failures = 3;
    verifier.locked_until = Some(T0 + 42);
    let frame = lanyard_proto::frame::encode(&verifier, 4096)?;
    let back: Verifier = lanyard_proto::frame::decode(&frame[lanyard_proto::frame::HEADER_LEN..])?;
    assert_eq!(back, verifier);
    Ok(())
}

/// Not an assertion: `cargo test -p lanyard-agent offline -- --nocapture` prints it.
#[test]
fn prints_how_long_make_and_check_take() -> TestResult {
    let started = Instant::now();
    let mut verifier = make(&secret("correct horse"), T0)?;
    let made = started.elapsed();
    let started = Instant::now();
    let answer = check(&mut verifier, &secret("correct horse"), T0, &rules());
    let checked = started.elapsed();
    assert_eq!(answer, OfflineCheck::Accepted);
    println!("offline verifier: make {made:?}, check {checked:?}");
    Ok(())
}
