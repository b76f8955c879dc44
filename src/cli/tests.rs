//! Tests of the command line: `--help` says each flag's variable and default the same way, and
//! the flags take what the config file takes (sizes with units, host names).

use super::*;

/// The long help of a subcommand, as `ecr-proxy SUB --help` prints it.
fn help(sub: &str) -> String {
    let mut cmd = Cli::command();
    cmd.build();
    cmd.find_subcommand_mut(sub)
        .expect("subcommand")
        .render_long_help()
        .to_string()
}

/// Each option's block of the help: its `--flag` line and the lines under it.
fn options(help: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if t.starts_with("--") || (t.starts_with('-') && t.contains(", --")) {
            let flag = t[t.find("--").unwrap()..]
                .split([' ', '='])
                .next()
                .unwrap()
                .to_string();
            out.push((flag, String::new()));
        } else if let Some((_, text)) = out.last_mut() {
            text.push_str(t);
            text.push(' ');
        }
    }
    out
}

#[test]
fn the_parser_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn every_serve_flag_says_its_variable_and_default_alike() {
    let help = help("serve");
    let opts = options(&help);
    let flags: Vec<&str> = opts.iter().map(|(f, _)| f.as_str()).collect();
    for f in [
        "--listen",
        "--config",
        "--local",
        "--blob-mode",
        "--log-format",
    ] {
        assert!(flags.contains(&f), "{f} missing from:\n{help}");
    }
    for (flag, text) in &opts {
        if matches!(flag.as_str(), "--help" | "--version") {
            continue;
        }
        let var = format!(
            "[env: ECR_PROXY_{}=",
            flag[2..].to_uppercase().replace('-', "_")
        );
        assert!(text.contains(&var), "{flag} does not say {var}]: {text}");
        let has_default = !matches!(flag.as_str(), "--config" | "--local");
        assert_eq!(text.contains("[default: "), has_default, "{flag}: {text}");
    }
    let text = |f: &str| opts.iter().find(|(x, _)| x == f).unwrap().1.clone();
    assert!(text("--listen").contains("[default: 127.0.0.1:5000]"));
    assert!(text("--blob-mode").contains("[default: redirect]"));
    assert!(text("--blob-mode").contains("under --local: stream"));
    assert!(text("--local").contains("create-on-push") && text("--local").contains("stream"));
}

#[test]
fn every_emulator_flag_has_a_description_variable_and_default() {
    let help = help("emulator");
    for (flag, text) in options(&help) {
        if matches!(flag.as_str(), "--help" | "--version") {
            continue;
        }
        assert!(
            !text.trim_start().starts_with('['),
            "{flag} has no description: {text}"
        );
        if flag == "--log-format" {
            continue;
        }
        let var = format!(
            "[env: ECR_PROXY_EMULATOR_{}",
            flag[2..].to_uppercase().replace('-', "_")
        );
        assert!(text.contains(&var), "{flag} does not say {var}: {text}");
        let has_default = !matches!(flag.as_str(), "--data" | "--faults");
        assert_eq!(text.contains("[default: "), has_default, "{flag}: {text}");
    }
    assert!(help.contains("[default: 10MiB]"), "{help}");
}

#[test]
fn a_default_the_config_file_can_set_is_left_to_it() {
    let serve = |args: &[&str]| match Cli::parse_layered(args).map(|c| c.command) {
        Ok(Command::Serve(a)) => (a.listen.map(|l| l.to_string()), a.blob_mode.is_some()),
        other => panic!("{other:?}"),
    };
    // Unset variables are assumed (these tests do not set them).
    assert_eq!(serve(&["ecr-proxy", "serve"]), (None, false));
    assert_eq!(
        serve(&[
            "ecr-proxy",
            "serve",
            "--listen",
            "127.0.0.1:6000",
            "--blob-mode",
            "stream"
        ]),
        (Some("127.0.0.1:6000".into()), true)
    );
}

#[test]
fn sizes_take_the_config_units_and_listen_takes_host_names() {
    let parse = |args: &[&str]| Cli::parse_layered(args).map(|c| c.command);
    let part =
        |size: &str| match parse(&["ecr-proxy", "emulator", "--data", "d", "--part-size", size]) {
            Ok(Command::Emulator(a)) => Ok(a.part_size.0),
            Ok(_) => unreachable!(),
            Err(e) => Err(e.to_string()),
        };
    assert_eq!(part("6MiB"), Ok(6 * 1024 * 1024));
    assert_eq!(part("5242880"), Ok(5 * 1024 * 1024));
    assert!(part("ten").unwrap_err().contains("not a size"));
    match parse(&["ecr-proxy", "serve", "--listen", "localhost:5000"]) {
        Ok(Command::Serve(a)) => assert_eq!(a.listen.unwrap().to_string(), "localhost:5000"),
        other => panic!("{other:?}"),
    }
    let bad = parse(&["ecr-proxy", "serve", "--listen", "nowhere"]).unwrap_err();
    assert!(bad.to_string().contains("localhost:5000"), "{bad}");
    match parse(&[
        "ecr-proxy",
        "emulator",
        "--data",
        "d",
        "--listen",
        "localhost:5100",
    ]) {
        Ok(Command::Emulator(a)) => assert_eq!(a.listen.port(), 5100),
        other => panic!("{other:?}"),
    }
}
