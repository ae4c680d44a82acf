//! Start-up, restart and shutdown of the real binary.

use std::process::Command;

use crate::util::{Dirs, PLAIN_JPEG, Server, copy_from_corpus, get_xattr};

#[test]
fn restart_reads_xattrs_instead_of_parsing_again() {
    let dirs = Dirs::new();
    for n in 0..20 {
        copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, &format!("d{}/{n}.jpg", n % 3))]);
    }
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let first = server.wait_indexed();
    assert_eq!(first["metadata"]["extracted"], 20, "{first}");
    let listing = server.all_items("", 100);
    assert_eq!(server.stop().code(), Some(0));
    let record = get_xattr(&dirs.media.join("d0/0.jpg"), "user.spis.meta").expect("meta xattr written");
    // Small enough to live inside an ext4 inode (about 100 bytes for all of a file's attributes).
    assert!(record.len() <= 48, "{} bytes", record.len());

    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let second = server.wait_indexed();
    assert_eq!(second["metadata"]["from_xattr"], 20, "{second}");
    assert_eq!(second["metadata"]["extracted"], 0, "{second}");
    assert_eq!(server.all_items("", 100), listing);

    // A changed file is extracted again; the others still come from their records.
    drop(server);
    std::fs::write(
        dirs.media.join("d0/0.jpg"),
        std::fs::read(crate::util::corpus().join(PLAIN_JPEG)).unwrap(),
    )
    .unwrap();
    crate::util::set_mtime(&dirs.media.join("d0/0.jpg"), 1_500_000_000);
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    let third = server.wait_indexed();
    assert_eq!(
        (third["metadata"]["from_xattr"].as_u64(), third["metadata"]["extracted"].as_u64()),
        (Some(19), Some(1))
    );
}

#[test]
fn restart_uses_the_state_dir_cache_when_xattrs_are_off() {
    let dirs = Dirs::new();
    for n in 0..5 {
        copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, &format!("{n}.jpg"))]);
    }
    let server = Server::start(&dirs.media, &dirs.state, &["--xattr", "off"]);
    server.wait_indexed();
    drop(server);
    let server = Server::start(&dirs.media, &dirs.state, &["--xattr", "off"]);
    let s = server.wait_indexed();
    assert_eq!(s["metadata"]["from_state_dir"], 5, "{s}");
    drop(server);
    // Deleting the cache only costs time.
    std::fs::remove_file(dirs.state.join("meta-cache.bin")).unwrap();
    let server = Server::start(&dirs.media, &dirs.state, &["--xattr", "off"]);
    let s = server.wait_indexed();
    assert_eq!((s["metadata"]["extracted"].as_u64(), s["items"].as_u64()), (Some(5), Some(5)), "{s}");
}

#[test]
fn sigterm_exits_cleanly() {
    let dirs = Dirs::new();
    let server = Server::start(&dirs.media, &dirs.state, &[]);
    server.wait_indexed();
    assert_eq!(server.stop().code(), Some(0));
}

#[test]
fn systemd_hears_ready_then_the_watchdog_then_stopping() {
    let dirs = Dirs::new();
    let path = dirs.state.with_extension("notify");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let server = Server::start_with_env(
        &dirs.media,
        &dirs.state,
        &[],
        &[("NOTIFY_SOCKET", path.to_str().unwrap()), ("WATCHDOG_USEC", "200000")],
    );
    let next = || {
        let mut buf = [0; 512];
        let len = socket.recv(&mut buf).expect("a notification within 30 s");
        String::from_utf8(buf[..len].to_vec()).unwrap()
    };
    let ready = next();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(ready.contains("STATUS=serving"), "{ready:?}");
    // Petted every 100 ms (half of WATCHDOG_USEC) while it serves.
    for _ in 0..3 {
        assert_eq!(next(), "WATCHDOG=1");
    }
    server.get("/api/health");
    let stop = std::thread::spawn(move || server.stop());
    let stopping = std::iter::repeat_with(next).find(|m| m != "WATCHDOG=1").unwrap();
    assert!(stopping.starts_with("STOPPING=1"), "{stopping:?}");
    assert_eq!(stop.join().unwrap().code(), Some(0));
}

#[test]
fn a_missing_media_folder_stops_startup_with_one_clear_sentence() {
    let dirs = Dirs::new();
    let out = Command::new(env!("CARGO_BIN_EXE_spis"))
        .arg("--media")
        .arg(dirs.media.join("nope"))
        .arg("--state-dir")
        .arg(&dirs.state)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("SPIS_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist") && err.contains("--media"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn bad_hook_options_stop_startup_with_a_clear_sentence() {
    let dirs = Dirs::new();
    let cases: [(&[&str], &[&str]); 3] = [
        (&["--webhook", "https://example.org/hook"], &["https", "TLS"]),
        (&["--webhook", "example.org/hook"], &["--webhook"]),
        (&["--on-new-media", "/nonexistent/notify"], &["--on-new-media", "/nonexistent/notify"]),
    ];
    for (args, needles) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_spis"))
            .arg("--media")
            .arg(&dirs.media)
            .arg("--state-dir")
            .arg(&dirs.state)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("SPIS_CONFIG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(needles.iter().all(|n| err.contains(n)), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn config_file_env_and_flags_apply_in_order() {
    let dirs = Dirs::new();
    copy_from_corpus(&dirs.media, &[(PLAIN_JPEG, "from-file/x.jpg"), (PLAIN_JPEG, "from-env/y.jpg")]);
    let config = dirs.state.with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "media = \"{}/from-file\"\nno_auth = true\nstate_dir = \"{{{{ env(name=\"SPIS_TEST_STATE\") }}}}\"\n",
            dirs.media.display()
        ),
    )
    .unwrap();
    let run = |env: &[(&str, String)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spis"));
        cmd.args(["--listen", "127.0.0.1:0", "--config"]).arg(&config).env("SPIS_TEST_STATE", &dirs.state);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        // Killed however this ends, a failed assertion included.
        struct Running(std::process::Child);
        impl Drop for Running {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let mut child = Running(cmd.spawn().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.0.stdout.take().unwrap()), &mut line)
            .unwrap();
        let base = line.trim().strip_prefix("spis listening on ").unwrap().to_owned();
        wait_names(&base)
    };
    assert_eq!(run(&[]), ["x.jpg"]);
    let env_media = format!("{}/from-env", dirs.media.display());
    assert_eq!(run(&[("SPIS_MEDIA", env_media)]), ["y.jpg"]);

    std::fs::write(&config, "media = \"/x\"\nmedai = \"typo\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spis")).arg("--config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("medai"));
}

fn wait_names(base: &str) -> Vec<String> {
    for _ in 0..1000 {
        let s: serde_json::Value =
            crate::util::read(crate::util::agent().get(format!("{base}/api/status")).call().unwrap()).json();
        if s["indexing"]["done"] == true {
            let page =
                crate::util::read(crate::util::agent().get(format!("{base}/api/media")).call().unwrap())
                    .json();
            return page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_owned())
                .collect();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("never indexed");
}

#[test]
fn help_lists_every_option_with_its_env_var() {
    let out = Command::new(env!("CARGO_BIN_EXE_spis")).arg("help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--media",
        "SPIS_MEDIA",
        "--listen",
        "SPIS_LISTEN",
        "[default: 127.0.0.1:8080]",
        "--state-dir",
        "SPIS_STATE_DIR",
        "--config",
        "--xattr",
        "--log",
        "--watch",
        "SPIS_WATCH",
        "--webhook",
        "--on-new-media",
    ] {
        assert!(help.contains(needle), "{needle} missing from help:\n{help}");
    }
}
