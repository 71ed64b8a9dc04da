//! A refusal answered on the socket of a connection whose first request the raw path read.

use futures_lite::{AsyncWriteExt, future};
use roomcast_io::Runtime;

use crate::context::Inner;
use crate::io::HyperIo;
use crate::refusal::Refusal;

/// Answers `refusal` on `io` and closes it, within the write timeout.
pub(crate) async fn refuse<R, I>(inner: &Inner<R>, refusal: &Refusal, mut io: HyperIo<I>)
where
    R: Runtime,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send,
{
    let bytes = refusal.http1_bytes();
    let written = async {
        let _ = io.write_all(&bytes).await;
        let _ = io.close().await;
    };
    let timeout = inner.options.session.write_timeout;
    let runtime = &inner.runtime;
    let _ = future::or(written, runtime.sleep_until(runtime.now() + timeout)).await;
}
