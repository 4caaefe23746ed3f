//! A one-shot completion: the future a command returns, resolved by the pump when the broker
//! answers (single-threaded, as the browser is).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::Error;

struct Slot<T> {
    value: Option<Result<T, Error>>,
    waker: Option<Waker>,
    /// The sender is gone without a value.
    dropped: bool,
}

/// Resolves when the broker has answered a command: PUBACK or PUBCOMP for a QoS 1 or 2
/// publish (with its reason code), the write for QoS 0, SUBACK or UNSUBACK for a
/// subscription request. Fails with the [`Error`] that ended its chances (the client
/// stopped, the broker refused the message, the session was lost).
#[must_use = "a completion does nothing unless awaited"]
pub struct Completion<T> {
    slot: Rc<RefCell<Slot<T>>>,
}

/// The pump's end of a [`Completion`].
pub(crate) struct Resolver<T> {
    slot: Rc<RefCell<Slot<T>>>,
}

/// A connected pair.
pub(crate) fn pair<T>() -> (Resolver<T>, Completion<T>) {
    let slot = Rc::new(RefCell::new(Slot {
        value: None,
        waker: None,
        dropped: false,
    }));
    (
        Resolver {
            slot: Rc::clone(&slot),
        },
        Completion { slot },
    )
}

impl<T> Resolver<T> {
    /// Completes with `value` and wakes the waiting task.
    pub(crate) fn resolve(self, value: Result<T, Error>) {
        let waker = {
            let mut slot = self.slot.borrow_mut();
            slot.value = Some(value);
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for Resolver<T> {
    fn drop(&mut self) {
        let waker = {
            let mut slot = self.slot.borrow_mut();
            slot.dropped = true;
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Completion<T> {
    /// The result, if it is there already (without waiting).
    pub fn try_take(&mut self) -> Option<Result<T, Error>> {
        let mut slot = self.slot.borrow_mut();
        match slot.value.take() {
            Some(value) => Some(value),
            None if slot.dropped => Some(Err(Error::Closed)),
            None => None,
        }
    }
}

impl<T> Future for Completion<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(value) = self.try_take() {
            return Poll::Ready(value);
        }
        self.slot.borrow_mut().waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> std::fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = self.slot.borrow();
        f.debug_struct("Completion")
            .field("done", &(slot.value.is_some() || slot.dropped))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_once_with_the_value() {
        let (resolver, mut completion) = pair::<u8>();
        assert!(completion.try_take().is_none());
        resolver.resolve(Ok(7));
        assert_eq!(completion.try_take(), Some(Ok(7)));
    }

    #[test]
    fn a_dropped_resolver_fails_the_completion() {
        let (resolver, mut completion) = pair::<u8>();
        drop(resolver);
        assert_eq!(completion.try_take(), Some(Err(Error::Closed)));
    }
}
