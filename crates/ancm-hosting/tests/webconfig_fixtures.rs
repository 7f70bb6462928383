//! Synthetic web.config cases the real corpus lacks: every attribute and range edge,
//! entities, collections, element selection, positions with BOM/CRLF, malformed XML.
//!
//! One file, over 500 lines, for the whole element: each test takes one attribute or rule
//! in turn through the small parse helpers below.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ancm_hosting::config::{
    self, AspNetCoreConfig, ConfigError, ConfigErrorKind, HostingModel, Location,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webconfig");
const AUTHORING: &str = "Unable to get required configuration section \
    'system.webServer/aspNetCore'. Possible reason is web.config authoring error.";

fn file() -> &'static Path {
    Path::new("site/web.config")
}

/// A document with `element` starting at line 4, column 5.
fn doc(element: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n  <system.webServer>\n    \
         {element}\n  </system.webServer>\n</configuration>\n"
    )
}

fn ok(xml: &str) -> AspNetCoreConfig {
    config::parse(xml.as_bytes(), file()).unwrap_or_else(|e| panic!("{e}\n{xml}"))
}

fn err(xml: &str) -> ConfigError {
    match config::parse(xml.as_bytes(), file()) {
        Ok(c) => panic!("parsed but should not have: {c:?}\n{xml}"),
        Err(e) => e,
    }
}

fn at(line: u32, column: u32) -> Location {
    Location {
        file: file().to_path_buf(),
        line,
        column,
    }
}

fn line_col(e: &ConfigError) -> (u32, u32) {
    let l = e.location().unwrap_or_else(|| panic!("no location: {e}"));
    (l.line, l.column)
}

/// `<aspNetCore processPath="app" NAME="VALUE"/>`; NAME starts at column 35 of line 4.
fn with_attr(name: &str, value: &str) -> Result<AspNetCoreConfig, ConfigError> {
    config::parse(
        doc(&format!(
            r#"<aspNetCore processPath="app" {name}="{value}"/>"#
        ))
        .as_bytes(),
        file(),
    )
}

#[test]
fn defaults() {
    let cfg = ok(&doc(r#"<aspNetCore processPath="app"/>"#));
    assert_eq!(cfg, AspNetCoreConfig::new("app", at(4, 5)));
    assert_eq!(cfg.arguments, "");
    assert_eq!(cfg.hosting_model_raw, None);
    assert_eq!(cfg.hosting_model, HostingModel::OutOfProcess);
    assert!(!cfg.stdout_log_enabled);
    assert_eq!(cfg.stdout_log_file, r".\aspnetcore-stdout");
    assert_eq!(cfg.request_timeout_raw, None);
    assert_eq!(cfg.request_timeout_text(), "00:02:00");
    assert_eq!(cfg.request_timeout, Duration::from_secs(120));
    assert_eq!(cfg.startup_time_limit, 120);
    assert_eq!(cfg.shutdown_time_limit, 10);
    assert_eq!(cfg.rapid_fails_per_minute, 10);
    assert_eq!(cfg.processes_per_application, 1);
    assert!(cfg.forward_windows_auth_token);
    assert!(!cfg.disable_startup_error_page);
    assert!(cfg.environment_variables.is_empty() && cfg.handler_settings.is_empty());
    assert!(cfg.warnings().is_empty());
}

#[test]
fn full_fixture_via_directory() {
    let dir = PathBuf::from(FIXTURES).join("full");
    let cfg = config::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let s = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    };
    assert_eq!(
        cfg.location,
        Location {
            file: dir.join("web.config"),
            line: 16,
            column: 7
        }
    );
    assert_eq!(cfg.process_path, r"%ProgramFiles%\dotnet\dotnet.exe");
    assert_eq!(cfg.arguments, r#"exec ".\My App.dll" --urls <auto> & more"#);
    assert_eq!(cfg.startup_time_limit, 3600);
    assert_eq!(cfg.shutdown_time_limit, 600);
    assert_eq!(cfg.rapid_fails_per_minute, 0);
    assert_eq!(cfg.request_timeout_raw.as_deref(), Some("1.02:03:04"));
    assert_eq!(cfg.request_timeout, Duration::from_secs(93_784));
    assert!(cfg.stdout_log_enabled);
    assert_eq!(cfg.stdout_log_file, r"%HOME%\LogFiles\stdout");
    assert_eq!(cfg.processes_per_application, 4);
    assert!(!cfg.forward_windows_auth_token);
    assert!(cfg.disable_startup_error_page);
    assert_eq!(cfg.hosting_model_raw.as_deref(), Some("OutOfProcess"));
    assert_eq!(cfg.hosting_model, HostingModel::OutOfProcess);
    assert_eq!(
        cfg.environment_variables,
        s(&[
            ("CONNECTION", r#"Server=a;Password="p&w'd<>""#),
            ("Numeric", "AB\u{1F600}"),
            ("aspnetcore_environment", "Production"),
            ("NO_VALUE", ""),
            ("LONG_FORM", "yes"),
        ])
    );
    assert_eq!(
        cfg.environment_variable(ancm_protocol::env::ENVIRONMENT),
        Some("Production")
    );
    assert_eq!(
        cfg.handler_settings,
        s(&[
            ("debugLevel", "FILE,TRACE"),
            ("debugFile", r".\logs\ancm.log")
        ])
    );
    assert_eq!(cfg.handler_setting("DebugLevel"), Some("FILE,TRACE"));

    let env = |n: &str| match n {
        "ProgramFiles" => Some(r"C:\Program Files".to_string()),
        "HOME" => Some("/home/site".to_string()),
        _ => None,
    };
    let x = cfg.expanded(&env);
    assert_eq!(x.process_path, r"C:\Program Files\dotnet\dotnet.exe");
    assert_eq!(x.arguments, cfg.arguments);
    assert_eq!(x.stdout_log_file, r"/home/site\LogFiles\stdout");
    assert_eq!(x.environment_variables, cfg.environment_variables);
}

#[test]
fn expansion_of_every_expanded_value() {
    let cfg = ok(&doc(
        r#"<aspNetCore processPath="%A%\app" arguments="%B% %NOPE% 100%" stdoutLogFile="%A%%B%">
      <environmentVariables><environmentVariable name="%A%" value="[%B%]"/></environmentVariables>
    </aspNetCore>"#,
    ));
    let env = |n: &str| match n {
        "A" => Some("a".to_string()),
        "B" => Some("%A%".to_string()),
        _ => None,
    };
    let x = cfg.expanded(&env);
    assert_eq!(x.process_path, r"a\app");
    assert_eq!(x.arguments, "%A% %NOPE% 100%");
    assert_eq!(x.stdout_log_file, "a%A%");
    // Names are not expanded, values are (once).
    assert_eq!(
        x.environment_variables,
        [("%A%".to_string(), "[%A%]".to_string())]
    );
}

#[test]
fn process_env_lookup() {
    // PATH is set in every test environment; a differently-cased name still finds it off
    // Windows through the case-insensitive fallback (and on Windows natively).
    let path = std::env::var("PATH").ok();
    assert_eq!(config::process_env("PATH"), path);
    assert_eq!(config::process_env("pAtH"), path);
    assert_eq!(config::process_env(""), None);
    assert_eq!(config::process_env("A=B"), None);
    assert_eq!(config::process_env("ANCM_RS_SURELY_UNDEFINED_42"), None);
}

#[test]
fn integer_ranges() {
    let cases: &[(&str, u32, u32)] = &[
        ("startupTimeLimit", 0, 3600),
        ("shutdownTimeLimit", 0, 600),
        ("rapidFailsPerMinute", 0, 100),
        ("processesPerApplication", 1, 100),
    ];
    for &(name, min, max) in cases {
        let get = |c: &AspNetCoreConfig| match name {
            "startupTimeLimit" => c.startup_time_limit,
            "shutdownTimeLimit" => c.shutdown_time_limit,
            "rapidFailsPerMinute" => c.rapid_fails_per_minute,
            _ => c.processes_per_application,
        };
        for good in [min, max, (min + max) / 2] {
            let c = with_attr(name, &good.to_string()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(get(&c), good, "{name}={good}");
        }
        assert_eq!(
            get(&with_attr(name, &format!(" 0{max}\t")).expect("ws")),
            max
        );
        let mut out = vec![
            (max + 1).to_string(),
            "4294967296".into(),
            "99999999999999999999".into(),
        ];
        if min > 0 {
            out.push((min - 1).to_string());
        }
        for bad in out {
            let e = with_attr(name, &bad).expect_err(&bad);
            assert_eq!(e.kind(), ConfigErrorKind::OutOfRange, "{e}");
            assert_eq!(
                e.message(),
                format!(
                    "Attribute '{name}' value '{bad}' is out of range: must be between {min} and {max}."
                )
            );
            assert_eq!(line_col(&e), (4, 35));
        }
        for bad in ["", " ", "-1", "+5", "0x10", "1e3", "12abc", "1 2", "１２"] {
            let e = with_attr(name, bad).expect_err(bad);
            assert_eq!(e.kind(), ConfigErrorKind::InvalidValue, "{e}");
            assert_eq!(
                e.message(),
                format!(
                    "Attribute '{name}' value '{bad}' is not a valid whole number: expected \
                     decimal digits between {min} and {max}."
                )
            );
            assert_eq!(line_col(&e), (4, 35));
        }
    }
}

#[test]
fn booleans_any_case() {
    for name in [
        "stdoutLogEnabled",
        "forwardWindowsAuthToken",
        "disableStartUpErrorPage",
    ] {
        let get = |c: &AspNetCoreConfig| match name {
            "stdoutLogEnabled" => c.stdout_log_enabled,
            "forwardWindowsAuthToken" => c.forward_windows_auth_token,
            _ => c.disable_startup_error_page,
        };
        for (v, want) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            (" true ", true),
            ("false", false),
            ("False", false),
            ("fAlSe", false),
        ] {
            assert_eq!(get(&with_attr(name, v).expect(v)), want, "{name}={v}");
        }
        for bad in ["", "yes", "1", "0", "on", "truee", "t"] {
            let e = with_attr(name, bad).expect_err(bad);
            assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
            assert_eq!(
                e.message(),
                format!(
                    "Attribute '{name}' value '{bad}' is not a valid boolean: expected 'true' or 'false'."
                )
            );
            assert_eq!(line_col(&e), (4, 35));
        }
    }
}

#[test]
fn request_timeout_forms_and_range() {
    for (v, secs) in [
        ("00:00:00", 0),
        ("00:02:00", 120),
        ("23:59:59", 86_399),
        ("1.00:00:00", 86_400),
        ("1.02:03:04", 93_784),
        ("1.02:03:04.0", 93_784),
        ("1.02:03:04.0000000", 93_784),
        ("0:0:5", 5),
        ("14.23:59:59", 1_295_999),
        ("15.00:00:00", 1_296_000),
        (" 00:10:00 ", 600),
        ("-00:00:00", 0),
    ] {
        let c = with_attr("requestTimeout", v).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(c.request_timeout, Duration::from_secs(secs), "{v}");
        assert_eq!(c.request_timeout_raw.as_deref(), Some(v));
        assert_eq!(c.request_timeout_text(), v);
    }
    let range = "is out of range: must be between 00:00:00 and 15.00:00:00 (360 hours).";
    for bad in [
        "15.00:00:01",
        "16.00:00:00",
        "99999999.00:00:00",
        "-00:00:01",
        "-1.00:00:00",
    ] {
        let e = with_attr("requestTimeout", bad).expect_err(bad);
        assert_eq!(e.kind(), ConfigErrorKind::OutOfRange, "{e}");
        assert_eq!(
            e.message(),
            format!("Attribute 'requestTimeout' value '{bad}' {range}")
        );
        assert_eq!(line_col(&e), (4, 35));
    }
    // The schema's granularity is one second: a non-zero fraction is refused.
    for bad in ["1.02:03:04.5", "00:00:00.0000001", "00:02:00.9"] {
        let e = with_attr("requestTimeout", bad).expect_err(bad);
        assert_eq!(e.kind(), ConfigErrorKind::OutOfRange, "{e}");
        assert!(
            e.message().contains("is not a whole number of seconds"),
            "{e}"
        );
    }
    for bad in [
        "",
        "120",
        "2m",
        "00:02",
        "360:00:00",
        "24:00:00",
        "00:60:00",
        "00:00:60",
        "1:2:3:4",
        "1.2.00:00:00",
        "00:00:00.",
        "00:00:00.12345678",
        "+00:00:01",
        "PT2M",
        "00:0a:00",
    ] {
        let e = with_attr("requestTimeout", bad).expect_err(bad);
        assert_eq!(e.kind(), ConfigErrorKind::InvalidValue, "{e}");
        assert!(
            e.message().starts_with(&format!(
                "Attribute 'requestTimeout' value '{bad}' is not a valid timeSpan ("
            )),
            "{e}"
        );
        assert!(
            e.message()
                .ends_with("expected [d.]hh:mm:ss[.fraction], e.g. 00:02:00 or 1.12:00:00.")
        );
        assert_eq!(line_col(&e), (4, 35));
    }
    let e = with_attr("requestTimeout", "360:00:00").expect_err("360 h");
    assert!(
        e.message()
            .contains("hours must be 0-23 (write 36 hours as 1.12:00:00)"),
        "{e}"
    );
}

#[test]
fn hosting_models() {
    for (v, want) in [
        ("", HostingModel::OutOfProcess),
        ("outofprocess", HostingModel::OutOfProcess),
        ("OutOfProcess", HostingModel::OutOfProcess),
        ("inprocess", HostingModel::InProcess),
        ("InProcess", HostingModel::InProcess),
        ("INPROCESS", HostingModel::InProcess),
    ] {
        let c = with_attr("hostingModel", v).expect(v);
        assert_eq!(c.hosting_model, want, "{v}");
        assert_eq!(c.hosting_model_raw.as_deref(), Some(v));
    }
    let c = with_attr("hostingModel", "InProcess").expect("inprocess");
    assert_eq!(c.warnings().len(), 1);
    assert!(
        c.warnings()[0].contains("runs out-of-process"),
        "{:?}",
        c.warnings()
    );
    for bad in ["foo", " inprocess", "in-process", "OutOfProc"] {
        let e = with_attr("hostingModel", bad).expect_err(bad);
        assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
        assert_eq!(
            e.message(),
            format!(
                "Unknown hosting model '{bad}'. Please specify either hostingModel=\"inprocess\" \
                 or hostingModel=\"outofprocess\" in the web.config file."
            )
        );
        assert_eq!(line_col(&e), (4, 35));
    }
    // ANCM checks hostingModel before processPath.
    let e = err(&doc(r#"<aspNetCore hostingModel="x"/>"#));
    assert!(e.message().starts_with("Unknown hosting model 'x'."), "{e}");
}

#[test]
fn process_path_required() {
    for element in [
        "<aspNetCore/>",
        r#"<aspNetCore processPath=""/>"#,
        r#"<aspNetCore arguments="app.dll" startupTimeLimit="5"></aspNetCore>"#,
    ] {
        let e = err(&doc(element));
        assert_eq!(e.kind(), ConfigErrorKind::MissingAttribute);
        assert_eq!(e.message(), "Attribute 'processPath' is required.");
        assert_eq!(e.location(), Some(&at(4, 5)));
        assert_eq!(
            e.to_string(),
            "site/web.config:4:5: Attribute 'processPath' is required."
        );
    }
    // Per-attribute errors come first, as IIS validates the schema before ANCM reads it.
    let e = err(&doc(r#"<aspNetCore startupTimeLimit="x"/>"#));
    assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
    // White space alone is a value (ANCM only checks for empty).
    assert_eq!(
        ok(&doc(r#"<aspNetCore processPath=" "/>"#)).process_path,
        " "
    );
}

#[test]
fn environment_variable_collection() {
    let c = ok(&doc(
        r#"<aspNetCore processPath="app"><environmentVariables>
        <environmentVariable name="A" value="1"/>
        <environmentVariable name="B" value="2"/>
        <environmentVariable name="a" value="3"/>
        <environmentVariable name="C"/>
        <remove name="b"/>
        <remove name="not-there"/>
        <environmentVariable name="Ä" value="4"/>
        <environmentVariable name="ä" value="5"/>
      </environmentVariables>
      <environmentVariables><environmentVariable name="D" value="6"/></environmentVariables>
    </aspNetCore>"#,
    ));
    let got: Vec<(&str, &str)> = c
        .environment_variables
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(got, [("a", "3"), ("C", ""), ("ä", "5"), ("D", "6")]);

    let c = ok(&doc(
        r#"<aspNetCore processPath="app"><environmentVariables>
        <environmentVariable name="A" value="1"/><clear/><environmentVariable name="B" value="2"/>
      </environmentVariables></aspNetCore>"#,
    ));
    assert_eq!(
        c.environment_variables,
        [("B".to_string(), "2".to_string())]
    );

    // <add> is the schema error of protocol §3.1, located at the <add>.
    let e = err(&doc(r#"<aspNetCore processPath="app">
      <environmentVariables>
        <add name="A" value="1"/>
      </environmentVariables>
    </aspNetCore>"#));
    assert_eq!(e.kind(), ConfigErrorKind::AuthoringError);
    assert!(e.message().starts_with(AUTHORING), "{e}");
    assert!(
        e.message()
            .contains("<add> is not allowed in <environmentVariables>"),
        "{e}"
    );
    assert_eq!(line_col(&e), (6, 9));

    for bad in [
        r#"<environmentVariable value="1"/>"#,
        r#"<environmentVariable name="" value="1"/>"#,
    ] {
        let e = err(&doc(&format!(
            r#"<aspNetCore processPath="app"><environmentVariables>{bad}</environmentVariables></aspNetCore>"#
        )));
        assert_eq!(e.kind(), ConfigErrorKind::MissingAttribute, "{e}");
        assert_eq!(
            e.message(),
            "Element 'environmentVariable' is missing the required attribute 'name' (or it is empty)."
        );
        assert_eq!(line_col(&e), (4, 57));
    }
    let e = err(&doc(
        r#"<aspNetCore processPath="app"><environmentVariables><environmentVariable name="A=B"/></environmentVariables></aspNetCore>"#,
    ));
    assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
    assert_eq!(line_col(&e), (4, 57));
    let e = err(&doc(
        r#"<aspNetCore processPath="app"><environmentVariables><remove/></environmentVariables></aspNetCore>"#,
    ));
    assert_eq!(e.kind(), ConfigErrorKind::MissingAttribute);

    // Outside <aspNetCore> (corpus 038) or under a later element: not ours.
    let c = ok(&doc(
        r#"<aspNetCore processPath="app"/><environmentVariables><environmentVariable name="X" value="1"/></environmentVariables>"#,
    ));
    assert!(c.environment_variables.is_empty());
}

#[test]
fn handler_setting_collection() {
    let c = ok(&doc(r#"<aspNetCore processPath="app"><handlerSettings>
        <handlerSetting name="debugLevel" value="TRACE"/>
        <handlerSetting name="DebugLevel" value="ERROR"/>
        <handlerSetting name="stackSize" value="2097152"/>
        <handlerSetting name="debugFile"/>
      </handlerSettings></aspNetCore>"#));
    assert_eq!(c.handler_setting("DEBUGLEVEL"), Some("TRACE"));
    assert_eq!(c.handler_setting("debugFile"), Some(""));
    assert_eq!(c.handler_settings.len(), 3);
    assert!(
        c.warnings().iter().any(|w| w.contains("'stackSize'")),
        "{:?}",
        c.warnings()
    );

    let e = err(&doc(
        r#"<aspNetCore processPath="app"><handlerSettings><add name="a" value="b"/></handlerSettings></aspNetCore>"#,
    ));
    assert_eq!(e.kind(), ConfigErrorKind::AuthoringError);
    assert!(e.message().starts_with(AUTHORING));
    assert_eq!(line_col(&e), (4, 52));
}

#[test]
fn unknown_attributes_and_children() {
    let c = ok(&doc(
        r#"<aspNetCore processPath="app" futureThing="1" xdt:Transform="Replace" xmlns:q="urn:q" q:x="y">
      <recycleOnFileChange><file path="a.json"/></recycleOnFileChange>
      <somethingNew><add name="x"/></somethingNew>
    </aspNetCore>"#,
    ));
    assert_eq!(c.process_path, "app");
    // A known name in the wrong case is surely a typo that IIS would reject.
    let e = with_attr("disableStartupErrorPage", "true").expect_err("case");
    assert_eq!(e.kind(), ConfigErrorKind::AuthoringError);
    assert_eq!(
        e.message(),
        "Unrecognized attribute 'disableStartupErrorPage': attribute names are case-sensitive; \
         write 'disableStartUpErrorPage'."
    );
    assert_eq!(line_col(&e), (4, 35));
    let e = with_attr("configSource", "aspnetcore.config").expect_err("configSource");
    assert_eq!(e.kind(), ConfigErrorKind::AuthoringError);
    assert!(e.message().starts_with("configSource"), "{e}");
}

#[test]
fn which_element_counts() {
    let wrap = |body: &str| format!("<configuration>\n{body}\n</configuration>");
    let pp = |xml: &str| ok(xml).process_path;
    // A <location> for a sub-path is another application's: skipped.
    assert_eq!(
        pp(&wrap(
            r#"<location path="api"><system.webServer><aspNetCore processPath="sub"/></system.webServer></location>
<system.webServer><aspNetCore processPath="root"/></system.webServer>"#
        )),
        "root"
    );
    for path in [r#" path=".""#, r#" path="""#, ""] {
        assert_eq!(
            pp(&wrap(&format!(
                r#"<location{path}><system.webServer><aspNetCore processPath="loc"/></system.webServer></location>"#
            ))),
            "loc"
        );
    }
    // The first one in document order wins.
    assert_eq!(
        pp(&wrap(
            r#"<system.webServer><aspNetCore processPath="one"/><aspNetCore processPath="two"/></system.webServer>
<location path="."><system.webServer><aspNetCore processPath="three"/></system.webServer></location>"#
        )),
        "one"
    );
    // ... and a later, broken one does not matter (IIS would object to the duplicate).
    assert_eq!(
        pp(&wrap(
            r#"<system.webServer><aspNetCore processPath="one"/><aspNetCore processPath="two" startupTimeLimit="x"/></system.webServer>"#
        )),
        "one"
    );
    // Commented out: ignored.
    assert_eq!(
        pp(&wrap(
            r#"<system.webServer><!-- <aspNetCore processPath="c"/> --><aspNetCore processPath="real"/></system.webServer>"#
        )),
        "real"
    );
    // Default namespaces do not matter.
    assert_eq!(
        pp(
            r#"<configuration xmlns="http://schemas.microsoft.com/.NET/configuration/v2.0"><system.webServer><aspNetCore processPath="ns"/></system.webServer></configuration>"#
        ),
        "ns"
    );
    let none = [
        wrap(r#"<location path="sub"><system.webServer><aspNetCore processPath="sub"/></system.webServer></location>"#),
        wrap(r#"<aspNetCore processPath="x"/>"#),
        wrap(r#"<system.web><aspNetCore processPath="x"/></system.web>"#),
        wrap(r#"<system.webServer><handlers><aspNetCore processPath="x"/></handlers></system.webServer>"#),
        wrap(r#"<system.webServer><aspnetcore processPath="x"/></system.webServer>"#),
        wrap(r#"<system.webServer><x:aspNetCore xmlns:x="urn:x" processPath="x"/></system.webServer>"#),
        r#"<settings><system.webServer><aspNetCore processPath="x"/></system.webServer></settings>"#.into(),
        wrap(r#"<system.webServer><!-- <aspNetCore processPath="x"/> --></system.webServer>"#),
        "<configuration/>".into(),
    ];
    for xml in none {
        let e = err(&xml);
        assert_eq!(e.kind(), ConfigErrorKind::NoAspNetCore, "{xml}");
        assert_eq!(e.location(), None);
        assert!(
            e.to_string()
                .starts_with("site/web.config: no system.webServer/aspNetCore element found"),
            "{e}"
        );
    }
}

#[test]
fn transforms_are_rejected() {
    for root in [
        r#"<configuration xmlns:xdt="http://schemas.microsoft.com/XML-Document-Transform">"#,
        r#"<configuration xmlns:t="http://schemas.microsoft.com/XML-Document-Transform">"#,
    ] {
        let xml = format!(
            "\u{FEFF}<?xml version=\"1.0\"?>\n{root}<system.webServer><aspNetCore processPath=\"a\"/></system.webServer></configuration>"
        );
        let e = err(&xml);
        assert_eq!(e.kind(), ConfigErrorKind::Transform);
        assert!(
            e.to_string().starts_with(
                "site/web.config:2:1: 'web.config' is a web.config transform (XDT), not a configuration file"
            ),
            "{e}"
        );
    }
    // xdt:* attributes in a normal file are just unknown attributes.
    assert_eq!(
        ok(&doc(
            r#"<aspNetCore processPath="a" xdt:Transform="SetAttributes"/>"#
        ))
        .process_path,
        "a"
    );
}

#[test]
fn entities_and_attribute_white_space() {
    let c = ok(&doc(
        "<aspNetCore processPath=\"a&amp;b\" arguments=\"x\ty\r\nz\n&#10;&#x9;&#13;w &lt;&gt;&quot;&apos;\"/>",
    ));
    assert_eq!(c.process_path, "a&b");
    // Literal tab / CRLF / LF become spaces; character references are kept.
    assert_eq!(c.arguments, "x y z \n\t\rw <>\"'");
    let c = ok(&doc(
        "<aspNetCore processPath='single \"quoted\"' arguments=\"it's\"/>",
    ));
    assert_eq!(c.process_path, "single \"quoted\"");
    assert_eq!(c.arguments, "it's");
}

#[test]
fn positions_with_bom_crlf_and_wide_characters() {
    let xml = "\u{FEFF}<?xml version=\"1.0\"?>\r\n<configuration>\r\n  <!-- é ü 😀 -->\r\n  <system.webServer>\r\n\t<aspNetCore processPath=\"a\" startupTimeLimit=\"-1\"/>\r\n  </system.webServer>\r\n</configuration>";
    let e = err(xml);
    assert_eq!(line_col(&e), (5, 30));
    let e = err(&xml
        .replace("processPath=\"a\" ", "")
        .replace("\"-1\"", "\"1\""));
    assert_eq!(
        e.to_string(),
        "site/web.config:5:2: Attribute 'processPath' is required."
    );
    // Non-ASCII before the error on the same line: columns count characters, not bytes.
    let e = err(
        "<configuration>\n<system.webServer><aspNetCore processPath=\"é😀\" startupTimeLimit=\"x\"/></system.webServer></configuration>",
    );
    assert_eq!(line_col(&e), (2, 48));
    // A lone CR is a line break too.
    let e = err(
        "<configuration>\r<system.webServer>\r<aspNetCore/></system.webServer></configuration>",
    );
    assert_eq!(line_col(&e), (3, 1));
    // UTF-16 LE with a BOM reads the same as UTF-8.
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            xml.trim_start_matches('\u{FEFF}')
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let e16 = config::parse(&utf16, file()).expect_err("utf16");
    assert_eq!(line_col(&e16), (5, 30));
}

#[test]
fn malformed_xml_is_located() {
    let cases: &[(&str, (u32, u32), &str)] = &[
        // Mismatched end tag.
        (
            "<configuration>\n  <system.webServer>\n  </system.web>\n</configuration>",
            (3, 3),
            "",
        ),
        // Unclosed at end of file: located at the end, naming the open element.
        (
            "<configuration>\n<system.webServer>\n",
            (3, 1),
            "<system.webServer> opened at line 2, column 1 is not closed",
        ),
        // Duplicate attribute.
        (
            "<configuration>\n  <system.webServer><aspNetCore processPath=\"a\" processPath=\"b\"/></system.webServer></configuration>",
            (2, 49),
            "the same attribute is written twice",
        ),
        // Unquoted attribute value.
        (
            "<configuration>\n<a b=c/></configuration>",
            (2, 6),
            "in quotes",
        ),
        // '<' inside an attribute value.
        (
            "<configuration>\n<a b=\"<\"/></configuration>",
            (2, 4),
            "'<' in the value",
        ),
        // Unknown entity in an attribute and in text.
        (
            "<configuration>\n <a b=\"&nbsp;\"/></configuration>",
            (2, 5),
            "nbsp",
        ),
        (
            "<configuration>\n <a>&nbsp;</a></configuration>",
            (2, 5),
            "unknown entity '&nbsp;'",
        ),
        // Content after the root, a second root.
        (
            "<configuration/>\ntext",
            (2, 1),
            "text after the root element",
        ),
        (
            "<configuration/>\n<configuration/>",
            (2, 1),
            "a second root element",
        ),
        // Characters XML forbids, literal or as references.
        (
            "<configuration>\n <a b=\"x\u{1}\"/></configuration>",
            (2, 5),
            "U+0001",
        ),
        (
            "<configuration>\n <a b=\"&#0;\"/></configuration>",
            (2, 5),
            "b",
        ),
        (
            "<configuration>\n <a b=\"&#x1B;\"/></configuration>",
            (2, 5),
            "U+001B",
        ),
        (
            "<configuration>\n <a>x\u{0}</a></configuration>",
            (2, 6),
            "U+0000 is not allowed",
        ),
        (
            "<configuration>\n <!-- \u{7} --></configuration>",
            (2, 7),
            "U+0007 is not allowed",
        ),
        (
            "<configuration>\n <!-- a -- b --></configuration>",
            (2, 9),
            "",
        ),
        // Nothing at all.
        ("", (1, 1), "no root element"),
        (
            "<?xml version=\"1.0\"?>\n<!-- only a comment -->\n",
            (3, 1),
            "no root element",
        ),
        // Unterminated comment.
        ("<configuration>\n<!-- open", (2, 1), ""),
    ];
    for (xml, pos, needle) in cases {
        let e = err(xml);
        assert_eq!(e.kind(), ConfigErrorKind::MalformedXml, "{xml}: {e}");
        assert!(e.message().starts_with("malformed XML: "), "{e}");
        assert!(e.message().contains(needle), "{xml}: {e}");
        assert_eq!(line_col(&e), *pos, "{xml}: {e}");
    }
}

#[test]
fn encoding_errors() {
    let e = config::parse(
        b"<configuration>\n <a b=\"\xC3\x28\"/></configuration>",
        file(),
    )
    .expect_err("bad utf8");
    assert_eq!(e.kind(), ConfigErrorKind::Encoding);
    assert_eq!(line_col(&e), (2, 8));
    assert!(e.message().contains("not valid UTF-8"), "{e}");
    let e = config::parse(b"\xFF\xFE<\0a", file()).expect_err("odd utf16");
    assert_eq!(e.kind(), ConfigErrorKind::Encoding);
}

#[test]
fn load_errors_and_display() {
    let missing = Path::new(FIXTURES).join("no-such-dir/web.config");
    let e = config::load(&missing).expect_err("missing");
    assert_eq!(e.kind(), ConfigErrorKind::Io);
    assert_eq!(e.location(), None);
    assert_eq!(e.file(), missing);
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read: ", missing.display())),
        "{e}"
    );
    // A directory without web.config names the web.config it looked for.
    let e = config::load(Path::new(FIXTURES)).expect_err("no web.config");
    assert_eq!(e.file(), Path::new(FIXTURES).join("web.config"));
}
