//! EDGE: halo's command channel into a machine: a virtio-serial port
//! (`/dev/virtio-ports/halo` inside) on a unix socket qemu listens on in
//! the machine's directory. The guest's side is a shell loop
//! (`guest::AGENT`) that takes one line per command, `TOKEN BASE64`, runs
//! the decoded script with `sh` as root, writes its output to the port as
//! it comes, then `\nTOKEN STATUS`. It runs only what halo sends and can
//! send back only text: the guest gets nothing of the host through it.

use std::io::{BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::process::{read_line_bounded, Captured, LINE_MAX};

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("cannot connect to the machine's command channel {path}: {source}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the machine's command channel broke: {0}")]
    Io(#[from] std::io::Error),
    #[error("the machine closed its command channel (did it stop?)")]
    Closed,
    #[error("the machine no longer answers: {0}")]
    Broken(String),
}

/// How a command ended in the machine.
#[derive(Debug)]
pub struct Exec {
    /// The script's exit status; `None` when it ran past its timeout.
    pub status: Option<i32>,
    pub output: Captured,
}

pub struct Channel {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    seq: u64,
    /// Set once a command timed out: its output would mix into the next.
    broken: Option<String>,
}

impl Channel {
    /// Connects to qemu's socket at `path` (qemu makes it as it starts).
    pub fn connect(path: &Path, within: Duration) -> Result<Self, ChannelError> {
        let until = Instant::now() + within;
        loop {
            match UnixStream::connect(path) {
                Ok(s) => {
                    return Ok(Self {
                        reader: BufReader::new(s.try_clone()?),
                        writer: s,
                        seq: 0,
                        broken: None,
                    })
                }
                Err(e) if Instant::now() >= until => {
                    return Err(ChannelError::Connect {
                        path: path.display().to_string(),
                        source: e,
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Runs `script` with `sh` in the machine, handing each line of its
    /// output to `on_line`; at `timeout` gives up on it (the channel is
    /// then unusable).
    pub fn run(
        &mut self,
        script: &str,
        timeout: Duration,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Exec, ChannelError> {
        if let Some(b) = &self.broken {
            return Err(ChannelError::Broken(b.clone()));
        }
        self.seq += 1;
        let token = format!(
            "HALO-DONE-{}-{}",
            self.seq,
            jiff::Timestamp::now().as_nanosecond()
        );
        self.writer
            .write_all(format!("{token} {}\n", STANDARD.encode(script.as_bytes())).as_bytes())?;
        let until = Instant::now() + timeout;
        let mut output = Captured::default();
        let mut buf = Vec::new();
        // The line before the status is the guest's own newline.
        let mut blank_pending = false;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.broken = Some(format!(
                    "a command ran past its timeout ({} s)",
                    timeout.as_secs()
                ));
                return Ok(Exec {
                    status: None,
                    output,
                });
            }
            self.reader.get_ref().set_read_timeout(Some(left))?;
            // The guest runs a package's code: a line without end is cut at
            // LINE_MAX, as a host process's output is, never buffered whole.
            match read_line_bounded(&mut self.reader, &mut buf, LINE_MAX) {
                Ok(0) => return Err(ChannelError::Closed),
                Ok(_) if buf.last() != Some(&b'\n') && buf.len() < LINE_MAX => continue,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            let text = String::from_utf8_lossy(&buf);
            let line = text.trim_end_matches(['\n', '\r']).to_string();
            buf.clear();
            if let Some(status) = line
                .strip_prefix(&token)
                .and_then(|s| s.strip_prefix(' '))
                .and_then(|s| s.parse::<i32>().ok())
            {
                return Ok(Exec {
                    status: Some(status),
                    output,
                });
            }
            if line.is_empty() {
                if blank_pending {
                    on_line("");
                    output.push("");
                }
                blank_pending = true;
                continue;
            }
            if blank_pending {
                on_line("");
                output.push("");
                blank_pending = false;
            }
            on_line(&line);
            output.push(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_coreutils() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(STANDARD.encode(input.as_bytes()), want);
        }
        let text = "set -e\necho 'ü'\n";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf %s '{}' | base64 -d",
                STANDARD.encode(text.as_bytes())
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
    }

    /// The guest's loop, run here with a socket pair in place of the port.
    #[test]
    fn a_command_streams_its_output_and_returns_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("port");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let agent = crate::accept::driver::machine::guest::AGENT
            .replace("/dev/virtio-ports/halo", "/dev/stdin")
            .replace(
                "/run/halo-cmd",
                &dir.path().join("cmd").display().to_string(),
            )
            .replace("exec 3<>\"$PORT\"", "exec 3<&0");
        let server = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let fd = std::os::fd::OwnedFd::from(conn);
            std::process::Command::new("sh")
                .arg("-c")
                .arg(agent)
                .stdin(std::fs::File::from(fd))
                .status()
                .unwrap();
        });
        let mut ch = Channel::connect(&sock, Duration::from_secs(5)).unwrap();
        let mut seen = Vec::new();
        let r = ch
            .run(
                "echo one\necho\nprintf 'two'\nexit 3",
                Duration::from_secs(10),
                &mut |l| seen.push(l.to_string()),
            )
            .unwrap();
        assert_eq!(r.status, Some(3));
        assert_eq!(seen, ["one", "", "two"]);
        let r = ch
            .run("echo ok >&2", Duration::from_secs(10), &mut |_| {})
            .unwrap();
        assert_eq!((r.status, r.output.text()), (Some(0), "ok\n".to_string()));
        // A line without end from the guest is cut, never buffered whole.
        let mut longest = 0;
        let r = ch
            .run(
                "head -c 300000 /dev/zero | tr '\\0' x; echo",
                Duration::from_secs(10),
                &mut |l| longest = longest.max(l.len()),
            )
            .unwrap();
        assert_eq!((r.status, longest), (Some(0), LINE_MAX));
        let r = ch
            .run("sleep 5", Duration::from_millis(300), &mut |_| {})
            .unwrap();
        assert_eq!(r.status, None);
        assert!(matches!(
            ch.run("true", Duration::from_secs(1), &mut |_| {}),
            Err(ChannelError::Broken(_))
        ));
        drop(ch);
        server.join().unwrap();
    }
}
