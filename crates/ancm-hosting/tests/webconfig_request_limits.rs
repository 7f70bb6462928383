//! IIS request filtering's `<requestLimits>`, read from the same web.config as `<aspNetCore>`
//! (protocol §3.4): where it counts, its values, its errors, and corpus files that set it.

use std::path::Path;

use ancm_hosting::config::{self, ConfigErrorKind, IisRequestLimits};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/webconfig-corpus"
);

fn file() -> &'static Path {
    Path::new("site/web.config")
}

/// `<aspNetCore>` and then `inside` in one `<system.webServer>`, at line 4.
fn doc(inside: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n  <system.webServer>\n    \
         <aspNetCore processPath=\"app\"/>{inside}\n  </system.webServer>\n</configuration>\n"
    )
}

fn limits_element(attrs: &str) -> String {
    format!("<security><requestFiltering><requestLimits {attrs}/></requestFiltering></security>")
}

fn limits(xml: &str) -> IisRequestLimits {
    config::parse(xml.as_bytes(), file())
        .unwrap_or_else(|e| panic!("{e}\n{xml}"))
        .request_limits
}

#[test]
fn silent_means_none_and_the_defaults_are_iis_own() {
    let l = limits(&doc(""));
    assert_eq!(l, IisRequestLimits::default());
    assert_eq!(
        (l.max_allowed_content_length, l.max_url, l.max_query_string),
        (None, None, None)
    );
    assert_eq!(l.max_allowed_content_length_or_default(), 30_000_000);
    assert_eq!(l.max_url_or_default(), 4096);
    assert_eq!(l.max_query_string_or_default(), 2048);
    // A <requestFiltering> without <requestLimits> says nothing either.
    let l = limits(&doc(
        "<security><requestFiltering allowDoubleEscaping=\"true\"/></security>",
    ));
    assert_eq!(l, IisRequestLimits::default());
}

#[test]
fn written_values_are_read_and_the_first_element_counts() {
    let l = limits(&doc(&limits_element(
        r#"maxAllowedContentLength=" 1000 " maxUrl="64" maxQueryString="0" unknownAttr="x""#,
    )));
    assert_eq!(l.max_allowed_content_length, Some(1000));
    assert_eq!(l.max_url, Some(64));
    assert_eq!(l.max_query_string, Some(0));

    // Only what is written is Some; a later element is ignored.
    let two = format!(
        "{}{}",
        limits_element(r#"maxUrl="100""#),
        limits_element(r#"maxUrl="200" maxQueryString="5""#)
    );
    let l = limits(&doc(&two));
    assert_eq!((l.max_url, l.max_query_string), (Some(100), None));

    // Beyond IIS's 32-bit maximum: the value as written.
    let l = limits(&doc(&limits_element(
        r#"maxAllowedContentLength="10737418240""#,
    )));
    assert_eq!(l.max_allowed_content_length, Some(10_737_418_240));
}

#[test]
fn location_rules_are_those_of_aspnetcore() {
    let xml = format!(
        "<configuration>\n  <location path=\"sub\"><system.webServer>{}</system.webServer></location>\n  \
         <location path=\".\"><system.webServer><aspNetCore processPath=\"app\"/>{}\
         </system.webServer></location>\n</configuration>",
        limits_element(r#"maxUrl="1""#),
        limits_element(r#"maxUrl="2""#)
    );
    assert_eq!(limits(&xml).max_url, Some(2));
    // Before <aspNetCore> in the document, in its own <system.webServer>.
    let xml = format!(
        "<configuration><system.webServer>{}</system.webServer><system.webServer>\
         <aspNetCore processPath=\"app\"/></system.webServer></configuration>",
        limits_element(r#"maxQueryString="7""#)
    );
    assert_eq!(limits(&xml).max_query_string, Some(7));
}

#[test]
fn bad_values_are_errors_with_their_position() {
    let err = |attrs: &str| {
        config::parse(doc(&limits_element(attrs)).as_bytes(), file()).expect_err("should not parse")
    };
    let e = err(r#"maxUrl="64k""#);
    assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
    assert_eq!(e.location().map(|l| l.line), Some(4));
    assert!(e.message().contains("'maxUrl' value '64k'"), "{e}");

    let e = err(r#"maxQueryString="4294967296""#);
    assert_eq!(e.kind(), ConfigErrorKind::OutOfRange);
    assert!(e.message().contains("between 0 and 4294967295"), "{e}");

    let e = err(r#"maxAllowedContentLength="-1""#);
    assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);

    let e = err(r#"maxAllowedContentLength="18446744073709551616""#);
    assert_eq!(e.kind(), ConfigErrorKind::OutOfRange);

    // A known name in another case is surely a typo that IIS would refuse.
    let e = err(r#"maxurl="64""#);
    assert_eq!(e.kind(), ConfigErrorKind::AuthoringError);
    assert!(e.message().contains("write 'maxUrl'"), "{e}");
}

#[test]
fn corpus_files_that_set_limits() {
    let read = |name: &str| {
        config::load(&Path::new(CORPUS).join(name))
            .unwrap_or_else(|e| panic!("{e}"))
            .request_limits
    };
    let l = read("049-Azure-azure-functions-host-rewrite-alwayson-runtime-ns.config");
    assert_eq!(
        (l.max_allowed_content_length, l.max_url, l.max_query_string),
        (Some(104_857_600), Some(8192), Some(4096))
    );
    let l = read("058-lzh1231512-BabyLog-six-envvars-10gb-limit.config");
    assert_eq!(l.max_allowed_content_length, Some(10_737_418_240));
    let l = read("060-martin-stromberg-VideoPlayer-outofprocess-2h-timeout.config");
    assert_eq!(l.max_allowed_content_length, Some(4_294_967_295));
}
