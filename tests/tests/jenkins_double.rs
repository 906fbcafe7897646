//! The Jenkins controller double (`tests/jenkins_double.py`) against real Jenkins clients:
//! runs `tests/check_jenkins_double.py`, which starts its own doubles on 127.0.0.1 and drives
//! them with python-jenkins and `jenkins-jobs update` (auth, CSRF crumbs, node creation and
//! config.xml, the agent secret, agent.jar, builds, queue items, progressive logs, errors).
//! A missing Python module fails the test with `pip install -r tests/requirements.txt`.

use std::path::Path;
use std::process::Command;

use halo_tests::{need_tool, run};

#[test]
fn jenkins_double_answers_python_jenkins_and_jenkins_job_builder_as_the_contract_says() {
    need_tool("python3", "python3");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = run(Command::new("python3")
        .arg("tests/check_jenkins_double.py")
        .current_dir(&root));
    assert!(
        out.status.success(),
        "python3 tests/check_jenkins_double.py failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
