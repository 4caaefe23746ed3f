//! A two-way `select` for `no_std` without a dependency.

use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

/// Which future completed.
pub(crate) enum Either<A, B> {
    First(A),
    Second(B),
}

/// Runs both futures until one completes; the other is dropped. `first` is polled first, so
/// when both are ready the I/O result wins and no received byte is dropped.
pub(crate) async fn select<A: Future, B: Future>(
    first: A,
    second: B,
) -> Either<A::Output, B::Output> {
    let mut first = pin!(first);
    let mut second = pin!(second);
    poll_fn(|cx| {
        if let Poll::Ready(a) = first.as_mut().poll(cx) {
            return Poll::Ready(Either::First(a));
        }
        if let Poll::Ready(b) = second.as_mut().poll(cx) {
            return Poll::Ready(Either::Second(b));
        }
        Poll::Pending
    })
    .await
}
