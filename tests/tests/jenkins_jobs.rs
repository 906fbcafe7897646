//! The Jenkins Job Builder definitions in `jenkins-jobs/`: `bash jenkins-jobs/check.sh`
//! renders them with the real `jenkins-jobs test` and checks every job's label, parameters,
//! shell step, triggers and JUnit publisher in the XML. A missing `jenkins-jobs` fails the test
//! with `pip install -r tests/requirements.txt`.

use std::path::Path;
use std::process::Command;

use halo_tests::{need_tool, run};

#[test]
fn jenkins_jobs_render_with_jenkins_job_builder_and_hold_every_pipeline_job() {
    need_tool("python3", "python3");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = run(Command::new("bash")
        .arg("jenkins-jobs/check.sh")
        .current_dir(&root));
    assert!(
        out.status.success(),
        "bash jenkins-jobs/check.sh failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
