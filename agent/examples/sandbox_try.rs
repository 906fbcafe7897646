//! Scratch: runs a command in a host-tools sandbox.
fn main() {
    if std::env::args_os().nth(1).is_some_and(|a| a == agent::sandbox::INIT_ARG) {
        agent::sandbox::init::main();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ids = agent::sandbox::subids::load().expect("subids");
    let (root, rest) = args.split_first().expect("ROOT CMD...");
    let sb = if root == "-" {
        agent::sandbox::Sandbox::host_tools(None)
    } else {
        agent::sandbox::Sandbox::in_dir(std::path::Path::new(root))
    };
    let sb = sb.bind(std::path::Path::new("/work/brief"), "/brief", false);
    let argv: Vec<&str> = rest.iter().map(String::as_str).collect();
    let mut cmd = sb.command(ids, &argv).expect("command");
    let st = cmd.status().expect("status");
    println!("status {st}");
}
