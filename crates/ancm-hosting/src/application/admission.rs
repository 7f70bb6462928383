//! The decision for each request: app_offline.htm (503), an unusable web.config (500.0), a
//! self-contained Windows publish (500.32), a backend that cannot be started (502.5), a
//! stopping application (503) — or a ready backend.
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ancm_front::error_page::ErrorPage;
use ancm_front::{BackendTarget, Body};
use http::Response;

use super::{Generation, Inner};
use crate::config::AspNetCoreConfig;
use crate::supervisor::in_flight::Admission;
use crate::supervisor::{StartError, StartFailure};

impl Inner {
    /// A ready backend (started if needed) and the request's place among its requests in
    /// flight, or the response to send instead.
    pub(super) async fn admit(
        self: &Arc<Self>,
    ) -> Result<(BackendTarget, Admission), Response<Body>> {
        self.poll_files().await;
        for _ in 0..4 {
            if self.shutting_down.load(Ordering::Acquire) {
                return Err(ErrorPage::shutting_down().into_response());
            }
            if self.offline.is_offline() {
                return Err(self.offline.response());
            }
            let generation = self.current();
            match &*generation {
                Generation::Invalid { error, detailed } => {
                    let mut page = ErrorPage::configuration_error();
                    if *detailed {
                        page = page.with_detail(error.to_string());
                    }
                    return Err(self.finish_page(page).into_response());
                }
                Generation::Running {
                    config,
                    supervisor,
                    detailed,
                } => match supervisor.acquire().await {
                    Ok(admitted) => return Ok(admitted),
                    Err(failure) if failure.error == StartError::Stopping => {
                        // A recycle or app_offline switched generations under us: look again.
                        if Arc::ptr_eq(&generation, &self.current()) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    Err(failure) => {
                        return Err(self.startup_failure(config, *detailed, &failure));
                    }
                },
            }
        }
        if self.offline.is_offline() {
            return Err(self.offline.response());
        }
        Err(ErrorPage::shutting_down().into_response())
    }

    /// Adds the `ANCM_ADDITIONAL_ERROR_PAGE_LINK` link, when set.
    fn finish_page(&self, page: ErrorPage) -> ErrorPage {
        match &self.extra_link {
            Some(link) => page.with_extra_link(link.clone()),
            None => page,
        }
    }

    /// The 502.5 page (500.32 for a self-contained Windows publish, protocol §8.32): bare
    /// when `disableStartUpErrorPage`, with the failure when detailed.
    fn startup_failure(
        &self,
        config: &AspNetCoreConfig,
        detailed: bool,
        failure: &StartFailure,
    ) -> Response<Body> {
        let page = match failure.error {
            StartError::SelfContainedPublish { .. } => ErrorPage::incompatible_publish(),
            _ => ErrorPage::startup_failure(),
        };
        if config.disable_startup_error_page {
            return page.into_bare_response();
        }
        let page = if detailed {
            page.with_detail(failure.detail())
        } else {
            page
        };
        self.finish_page(page).into_response()
    }
}
