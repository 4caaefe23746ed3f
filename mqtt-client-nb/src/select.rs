//! A two-way `select` for `no_std` without a dependency.

use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::task::Poll;

/// Which future completed.
pub(crate) enum Either<A, B> {
    First(A),
    Second(B),
}

/// Runs both futures until one completes; the caller drops the other. `first` is polled
/// first, so when both are ready the I/O result wins and no received byte is dropped; a
/// `second` of `None` never completes. A plain function over pinned futures, not an
/// `async fn`: no state machine of its own around them.
pub(crate) fn select<'f, A: Future, B: Future>(
    mut first: Pin<&'f mut A>,
    mut second: Pin<&'f mut Option<B>>,
) -> impl Future<Output = Either<A::Output, B::Output>> + 'f {
    poll_fn(move |cx| {
        if let Poll::Ready(a) = first.as_mut().poll(cx) {
            return Poll::Ready(Either::First(a));
        }
        if let Some(Poll::Ready(b)) = second.as_mut().as_pin_mut().map(|b| b.poll(cx)) {
            return Poll::Ready(Either::Second(b));
        }
        Poll::Pending
    })
}
