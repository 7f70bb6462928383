//! ANCM-style error pages (protocol §1.8): small, valid HTML, no external resources.
//!
//! ```
//! use ancm_front::error_page::{ErrorPage, SubStatus};
//! let page = ErrorPage::startup_failure();
//! let html = page.to_html();
//! assert!(html.contains("<title>HTTP Error 502.5 - ANCM Out-Of-Process Startup Failure</title>"));
//! let resp = page.with_detail("child exited with code 1").into_response();
//! assert_eq!(resp.status(), 502);
//! // The sub-status travels with the response, for an access log's `sc-substatus`.
//! assert_eq!(resp.extensions().get::<SubStatus>(), Some(&SubStatus(5)));
//! ```
use std::fmt::Write as _;

use http::{HeaderValue, Response, StatusCode, header};

use crate::Body;

/// The IIS sub-status of a response the front made itself (the `5` of `502.5`), in the
/// response's extensions: every [`ErrorPage`] response carries one, so an access log can
/// write IIS's `sc-substatus`. A response without it (the backend's own) has sub-status 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubStatus(pub u16);

/// One error page: status, IIS substatus, the general error type and optional details.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    status: StatusCode,
    substatus: u16,
    kind: &'static str,
    solutions: &'static [&'static str],
    detail: Option<String>,
    extra_link: Option<String>,
}

const DOCS: &str = "https://learn.microsoft.com/aspnet/core/test/troubleshoot-azure-iis";

impl ErrorPage {
    /// 502.5 "ANCM Out-Of-Process Startup Failure": the backend could not be started.
    pub fn startup_failure() -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            5,
            "ANCM Out-Of-Process Startup Failure",
        )
        .solutions(&[
            "The application process failed to start.",
            "The application process started but then stopped.",
            "The application process started but failed to listen on the configured port.",
        ])
    }

    /// 502.3 "Bad Gateway": forwarding to the backend failed before the response started.
    pub fn forwarding_failure() -> Self {
        Self::new(StatusCode::BAD_GATEWAY, 3, "Bad Gateway").solutions(&[
            "The backend process did not answer in time (requestTimeout), closed the connection, or sent an invalid response.",
        ])
    }

    /// 500.0 "ANCM Configuration Error": web.config could not be used.
    pub fn configuration_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            0,
            "ANCM Configuration Error",
        )
        .solutions(&[
            "Fix the <aspNetCore> element of web.config; the error names the line and column.",
        ])
    }

    /// 500.32 "ANCM Failed to Load dll": the application was published for another system
    /// (a self-contained Windows publish on Linux or macOS).
    pub fn incompatible_publish() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            32,
            "ANCM Failed to Load dll",
        )
        .solutions(&[
            "The application was published for another operating system or processor architecture: a self-contained publish carries a runtime that runs only there.",
            "Publish it framework-dependent (dotnet publish --self-contained false) and install the .NET runtime here, or publish it for this system (dotnet publish -r <RID>).",
        ])
    }

    /// 503.0 "Application Shutting Down".
    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            0,
            "Application Shutting Down",
        )
    }

    /// 503.2 "Service Unavailable": the backend connection limit was reached and no
    /// connection came free in time (IIS uses 503.2 for its concurrent request limit).
    pub fn backend_busy() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, 2, "Service Unavailable").solutions(&[
            "The application already has as many requests in progress as the gateway allows; try again shortly.",
        ])
    }

    /// A page with any status, substatus and general error type.
    pub fn new(status: StatusCode, substatus: u16, kind: &'static str) -> Self {
        Self {
            status,
            substatus,
            kind,
            solutions: &[],
            detail: None,
            extra_link: None,
        }
    }

    /// Replace the "Common solutions" bullets.
    pub fn solutions(mut self, solutions: &'static [&'static str]) -> Self {
        self.solutions = solutions;
        self
    }

    /// Add the "Specific error detected by ANCM" block (only when detailed errors are on).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Add an extra link (`ANCM_ADDITIONAL_ERROR_PAGE_LINK`).
    pub fn with_extra_link(mut self, link: impl Into<String>) -> Self {
        self.extra_link = Some(link.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The IIS sub-status (the `5` of `502.5`).
    pub fn substatus(&self) -> u16 {
        self.substatus
    }

    /// The title line, e.g. `HTTP Error 502.5 - ANCM Out-Of-Process Startup Failure`.
    pub fn title(&self) -> String {
        format!(
            "HTTP Error {}.{} - {}",
            self.status.as_u16(),
            self.substatus,
            self.kind
        )
    }

    /// The page as HTML.
    pub fn to_html(&self) -> String {
        let title = escape(&self.title());
        let mut html = String::with_capacity(1024);
        let _ = write!(
            html,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
             <style>body{{font-family:sans-serif;margin:2em;max-width:60em}}pre{{white-space:pre-wrap;background:#f4f4f4;padding:1em}}</style>\n\
             </head>\n<body>\n<h1>{title}</h1>\n"
        );
        if !self.solutions.is_empty() {
            html.push_str("<h2>Common solutions to this issue:</h2>\n<ul>\n");
            for s in self.solutions {
                let _ = writeln!(html, "<li>{}</li>", escape(s));
            }
            html.push_str("</ul>\n");
        }
        if let Some(detail) = &self.detail {
            let _ = writeln!(
                html,
                "<h2>Specific error detected by ANCM:</h2>\n<pre>{}</pre>",
                escape(detail)
            );
        }
        html.push_str(
            "<h2>Troubleshooting steps:</h2>\n<ul>\n\
             <li>Check the gateway's log for the cause (RUST_LOG=debug for more).</li>\n\
             <li>Enable stdoutLogEnabled in web.config to capture the application's output.</li>\n\
             <li>Set ASPNETCORE_DETAILEDERRORS=1 to show the captured output on this page.</li>\n</ul>\n",
        );
        let _ = writeln!(
            html,
            "<p>For more information visit: <a href=\"{DOCS}\">{DOCS}</a></p>"
        );
        if let Some(link) = &self.extra_link {
            let link = escape(link);
            let _ = writeln!(html, "<p><a href=\"{link}\">{link}</a></p>");
        }
        html.push_str("</body>\n</html>\n");
        html
    }

    /// The page as a `text/html` response.
    pub fn into_response(self) -> Response<Body> {
        let mut resp = Response::new(Body::from(self.to_html()));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        resp.extensions_mut().insert(SubStatus(self.substatus));
        resp
    }

    /// The bare status with no ANCM body (`disableStartUpErrorPage`).
    pub fn into_bare_response(self) -> Response<Body> {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = self.status;
        resp.extensions_mut().insert(SubStatus(self.substatus));
        resp
    }
}

/// Escape text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_is_escaped_and_optional() {
        let html = ErrorPage::startup_failure().to_html();
        assert!(!html.contains("Specific error detected by ANCM"));
        let html = ErrorPage::startup_failure()
            .with_detail("<script>x</script>")
            .to_html();
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("<h1>HTTP Error 502.5 - ANCM Out-Of-Process Startup Failure</h1>"));
    }

    #[test]
    fn incompatible_publish_is_500_32() {
        let page = ErrorPage::incompatible_publish();
        assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(page.title(), "HTTP Error 500.32 - ANCM Failed to Load dll");
    }

    #[test]
    fn bare_response_has_no_body() {
        use http_body::Body as _;
        let resp = ErrorPage::startup_failure().into_bare_response();
        assert_eq!(resp.status(), 502);
        assert!(resp.body().is_end_stream());
        assert!(resp.headers().get(header::CONTENT_TYPE).is_none());
        assert_eq!(resp.extensions().get::<SubStatus>(), Some(&SubStatus(5)));
    }
}
