//! What the gateway records of each request: the [access log](access_log), the request
//! [metrics], and the debug event of each request.
//!
//! The router hands each request to its runtime thread's [`Observer`], which counts it in,
//! wraps its body to count the bytes read, and gives back a [`Pending`]; [`ObservedFuture`]
//! reads the response head (status, the front's [`SubStatus`], the [`TraceParent`]) and wraps
//! the response body, which records the request when it has been sent whole, or dropped:
//! time taken, bytes sent, the access log line. A request costs one timestamp at each end, a
//! few atomic additions on counters no other thread writes, and, with the access log on,
//! cheap clones of the request line and two headers (shared buffers) moved to the log's
//! queue.
pub mod access_log;
pub mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use ancm_front::Body;
use ancm_front::conn::ConnectionInfo;
use ancm_front::error_page::SubStatus;
use ancm_protocol::trace::TraceParent;
use bytes::Bytes;
use http::header::{REFERER, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Frame, SizeHint};

use access_log::{AccessLog, Entry, WIN32_NETNAME_DELETED};
use metrics::{Shard, method_class};

/// What the gateway records, shared by every runtime thread.
#[derive(Debug)]
pub struct Observability {
    access_log: Option<Arc<AccessLog>>,
    /// Whether anything reads the counters (metrics or the access log are on).
    active: bool,
    apps: usize,
    shards: Mutex<Vec<Arc<Shard>>>,
}

impl Observability {
    /// For `apps` applications; `active` when metrics are served.
    pub fn new(access_log: Option<AccessLog>, metrics: bool, apps: usize) -> Self {
        Self {
            active: metrics || access_log.is_some(),
            access_log: access_log.map(Arc::new),
            apps,
            shards: Mutex::new(Vec::new()),
        }
    }

    /// An observer for one runtime thread, with its own counters.
    pub fn observer(&self) -> Observer {
        let shard = Arc::new(Shard::new(self.apps));
        self.shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(shard.clone());
        Observer {
            shard,
            access_log: self.access_log.clone(),
            active: self.active,
        }
    }

    /// Every runtime thread's counters.
    pub fn shards(&self) -> Vec<Arc<Shard>> {
        self.shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The access log, when it is on.
    pub fn access_log(&self) -> Option<&Arc<AccessLog>> {
        self.access_log.as_ref()
    }
}

/// One runtime thread's recorder.
#[derive(Debug, Clone)]
pub struct Observer {
    shard: Arc<Shard>,
    access_log: Option<Arc<AccessLog>>,
    active: bool,
}

impl Observer {
    /// Whether requests are recorded: metrics or the access log are on, or debug events are
    /// enabled.
    pub fn records(&self) -> bool {
        self.active || tracing::enabled!(tracing::Level::DEBUG)
    }

    /// Counts a request of application `app` (`None`: no application took it) in, and wraps
    /// its body to count the bytes read.
    pub fn start<B>(
        &self,
        app: Option<usize>,
        req: Request<B>,
    ) -> (Request<CountedBody<B>>, Pending) {
        let counters = self.shard.app(app);
        counters.started();
        let facts = (self.access_log.is_some() || tracing::enabled!(tracing::Level::DEBUG))
            .then(|| RequestFacts::of(&req));
        let pending = Pending {
            shard: self.shard.clone(),
            app,
            method: method_class(req.method()),
            start: Instant::now(),
            access_log: self.access_log.clone(),
            facts,
        };
        let shard = self.shard.clone();
        let req = req.map(|inner| CountedBody {
            inner,
            shard,
            app,
            read: 0,
        });
        (req, pending)
    }
}

/// What the access log and the debug event need of a request, taken before it goes on.
#[derive(Debug)]
struct RequestFacts {
    method: Method,
    uri: Uri,
    version: Version,
    user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
    client: Option<SocketAddr>,
    local: Option<SocketAddr>,
}

impl RequestFacts {
    fn of<B>(req: &Request<B>) -> Self {
        let conn = req.extensions().get::<ConnectionInfo>();
        Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            user_agent: req.headers().get(USER_AGENT).cloned(),
            referer: req.headers().get(REFERER).cloned(),
            client: conn.map(ConnectionInfo::peer_addr),
            local: conn.map(ConnectionInfo::local_addr),
        }
    }
}

/// A request on its way: what recording it at its end needs.
#[derive(Debug)]
pub struct Pending {
    shard: Arc<Shard>,
    app: Option<usize>,
    method: usize,
    start: Instant,
    access_log: Option<Arc<AccessLog>>,
    facts: Option<RequestFacts>,
}

pin_project_lite::pin_project! {
    /// The stack's future; wraps the response body to record the request when it ends.
    ///
    /// # Panics
    ///
    /// Polling it again after it returned `Ready` panics with the message
    /// `"ResponseFuture polled after completion"`.
    pub struct ObservedFuture<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F> ObservedFuture<F> {
    /// `inner`, recording as `pending` says.
    pub fn new(inner: F, pending: Pending) -> Self {
        Self {
            inner,
            pending: Some(pending),
        }
    }
}

impl<F, E> Future for ObservedFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        assert!(
            this.pending.is_some(),
            "ResponseFuture polled after completion"
        );
        let result = ready!(this.inner.poll(cx));
        let Some(pending) = this.pending.take() else {
            unreachable!("checked above");
        };
        Poll::Ready(result.map(|response| {
            let status = response.status();
            let head_only = pending
                .facts
                .as_ref()
                .is_some_and(|f| f.method == Method::HEAD)
                || status.is_informational()
                || status == StatusCode::NO_CONTENT
                || status == StatusCode::NOT_MODIFIED;
            let completion = Completion {
                substatus: response.extensions().get::<SubStatus>().map_or(0, |s| s.0),
                trace_id: response
                    .extensions()
                    .get::<TraceParent>()
                    .map(TraceParent::trace_id),
                status,
                head_only,
                sent: 0,
                pending,
            };
            response.map(|inner| {
                Body::new(ObservedBody {
                    inner,
                    completion: Some(completion),
                })
            })
        }))
    }
}

/// What is known of a request once its response head is out.
#[derive(Debug)]
struct Completion {
    pending: Pending,
    status: StatusCode,
    substatus: u16,
    trace_id: Option<[u8; 16]>,
    /// A response that has no body to send (HEAD, 1xx, 204, 304).
    head_only: bool,
    sent: u64,
}

impl Completion {
    /// Records the request: `whole` when its response was sent to the end.
    fn finish(self, whole: bool) {
        let Completion {
            pending,
            status,
            substatus,
            trace_id,
            head_only,
            sent,
        } = self;
        let took = pending.start.elapsed();
        pending
            .shard
            .app(pending.app)
            .finished(pending.method, status, took, sent);
        let Some(facts) = pending.facts else {
            return;
        };
        let whole = whole || head_only;
        tracing::debug!(
            method = %facts.method,
            uri = %facts.uri,
            version = ?facts.version,
            status = status.as_u16(),
            substatus,
            whole,
            micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            trace_id = %trace_id.map(|id| TraceId(id).to_string()).unwrap_or_default(),
            "request"
        );
        if let Some(log) = pending.access_log {
            log.log(Entry {
                app: pending.app,
                at: SystemTime::now(),
                method: facts.method,
                uri: facts.uri,
                user_agent: facts.user_agent,
                referer: facts.referer,
                client: facts.client,
                local: facts.local,
                status: status.as_u16(),
                substatus,
                win32_status: if whole { 0 } else { WIN32_NETNAME_DELETED },
                time_taken: took,
                trace_id,
            });
        }
    }
}

/// A trace id as 32 lowercase hex digits.
struct TraceId([u8; 16]);

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

pin_project_lite::pin_project! {
    /// A response body that records its request when it has been sent whole or is dropped.
    pub struct ObservedBody {
        #[pin]
        inner: Body,
        completion: Option<Completion>,
    }

    impl PinnedDrop for ObservedBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(completion) = this.completion.take() {
                use http_body::Body as _;
                completion.finish(this.inner.is_end_stream());
            }
        }
    }
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = ancm_front::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(data), Some(completion)) = (frame.data_ref(), this.completion.as_mut())
                {
                    completion.sent += u64::try_from(data.len()).unwrap_or(u64::MAX);
                }
            }
            None => {
                if let Some(completion) = this.completion.take() {
                    completion.finish(true);
                }
            }
            Some(Err(_)) => {
                if let Some(completion) = this.completion.take() {
                    completion.finish(false);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A request body that counts the bytes read from it into its application's counters
    /// (once, when dropped).
    pub struct CountedBody<B> {
        #[pin]
        inner: B,
        shard: Arc<Shard>,
        app: Option<usize>,
        read: u64,
    }

    impl<B> PinnedDrop for CountedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.read > 0 {
                this.shard.app(*this.app).bytes_in(*this.read);
            }
        }
    }
}

impl<B> http_body::Body for CountedBody<B>
where
    B: http_body::Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            *this.read += u64::try_from(data.len()).unwrap_or(u64::MAX);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
