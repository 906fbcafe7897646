//! The exit codes every `halo` command and workflow shares, and the one
//! place that turns an error chain into one. Jenkins jobs read them: 1 is
//! "the content is bad" (a test or build failed, the input was wrong:
//! UNSTABLE or the commit's fault), 2 is "the surroundings failed" (a
//! store that is damaged or busy with a lost race, an unreachable
//! controller, a signing failure: FAILURE, nobody's commit), 75 "try
//! again later".

/// Everything ran and passed.
pub const EXIT_OK: u8 = 0;
/// The content or the request is at fault: a test or build failed,
/// acceptance rejected a snapshot, bad input.
pub const EXIT_REJECTED: u8 = 1;
/// A step could not run: infrastructure, setup, a lost race.
pub const EXIT_INFRA: u8 = 2;
/// The store was busy and --wait-timeout ran out, or another cycle was
/// running: EX_TEMPFAIL of sysexits.h, "try again later".
pub const EXIT_BUSY: u8 = 75;

/// A mistake in what the user asked for, found by halo itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

/// A failure of the surroundings (a lease held by another run, a channel
/// moved under a run, missing tests): exit 2, which Jenkins jobs map to
/// FAILURE where 1 means UNSTABLE (tests failed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InfraError(pub String);

/// An error type of a workflow decides its own exit code.
pub trait ExitStatus {
    fn exit_code(&self) -> u8;
}

fn is_busy(cause: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        cause.downcast_ref::<repofs::Error>(),
        Some(repofs::Error::Busy(_))
    ) || matches!(
        cause.downcast_ref::<crate::mirror::Error>(),
        Some(crate::mirror::Error::Store(repofs::Error::Busy(_)))
    )
}

/// Exit code for an error: the first cause in the chain that knows its
/// class decides; an unknown error is infrastructure (2), never the
/// commit's fault.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(is_busy) {
        return EXIT_BUSY;
    }
    for cause in err.chain() {
        if let Some(code) = classify(cause) {
            return code;
        }
    }
    EXIT_INFRA
}

/// The exit code one error in a chain stands for, if it knows.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    let user = |yes: bool| Some(if yes { EXIT_REJECTED } else { EXIT_INFRA });
    if cause.downcast_ref::<InfraError>().is_some() {
        return Some(EXIT_INFRA);
    }
    if cause.downcast_ref::<UserError>().is_some() {
        return Some(EXIT_REJECTED);
    }
    if let Some(e) = cause.downcast_ref::<super::accept::Error>() {
        return Some(e.exit_code());
    }
    if let Some(e) = cause.downcast_ref::<super::cycle::Error>() {
        return Some(e.exit_code());
    }
    if let Some(e) = cause.downcast_ref::<repofs::Error>() {
        return user(e.is_user_error());
    }
    if let Some(e) = cause.downcast_ref::<crate::mirror::Error>() {
        return user(e.is_user_error());
    }
    if cause.downcast_ref::<crate::config::ConfigError>().is_some() {
        return Some(EXIT_REJECTED);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_error_is_infrastructure_and_a_lost_race_is_not_the_commits_fault() {
        assert_eq!(exit_code(&anyhow::anyhow!("something")), EXIT_INFRA);
        let stale = repofs::Error::Promote(repofs::model::PromoteError::Stale {
            channel: "trusty".into(),
            expected: "a".into(),
            actual: Some("b".into()),
        });
        assert_eq!(
            exit_code(&anyhow::Error::new(stale).context("promote")),
            EXIT_INFRA
        );
        let unknown = repofs::Error::UnknownChannel("nope".into());
        assert_eq!(exit_code(&anyhow::Error::new(unknown)), EXIT_REJECTED);
        let busy = repofs::Error::Busy(std::time::Duration::from_secs(1));
        assert_eq!(exit_code(&anyhow::Error::new(busy)), EXIT_BUSY);
    }
}
