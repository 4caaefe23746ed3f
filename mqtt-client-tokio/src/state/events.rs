//! The queue of events for the application ([`Events`](crate::Events)).

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use crate::Event;

/// An event waiting in [`EventSink`]'s queue. Boxed, so that a queue of held events is a row
/// of pointers however large an event is (about 200 bytes).
pub(crate) type EventBox = Box<Event>;

/// Events for the application, never blocking the driver: a queue under the state's lock,
/// bounded by `Policy::event_buffer`, that [`Events`](crate::Events) reads. Not tokio's
/// mpsc channel: that allocates a block of 32 slots when it is made, 800 bytes every client
/// held for good; this queue holds nothing while it is empty.
pub(crate) struct EventSink {
    queue: VecDeque<EventBox>,
    capacity: usize,
    missed: u64,
    /// The application still holds `Events`.
    listening: bool,
    /// The client has stopped: `Events` ends once the queue is read.
    ended: bool,
    /// `Events` waiting for an event.
    reader: Option<Waker>,
    /// The driver waiting for room (a message held for the events stream).
    room: Option<Waker>,
}

/// Most slots an emptied queue keeps: below this it is not worth giving memory back, only
/// to allocate it again for the next few events.
const EVENT_SLOTS_KEPT: usize = 16;

impl EventSink {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            missed: 0,
            listening: true,
            ended: false,
            reader: None,
            room: None,
        }
    }

    /// Whether the application dropped `Events`: nothing is built for it then.
    pub(crate) fn is_closed(&self) -> bool {
        !self.listening
    }

    /// Events that fit before the queue is full.
    fn room_left(&self) -> usize {
        self.capacity.saturating_sub(self.queue.len())
    }

    /// Slots an event needs now: one more for a pending lag report.
    fn needed(&self) -> usize {
        if self.missed > 0 {
            2
        } else {
            1
        }
    }

    /// Whether an event (and a pending lag report) would be queued; counts a miss if not.
    /// False once the application dropped `Events`.
    pub(crate) fn has_room(&mut self) -> bool {
        if self.fits() {
            return true;
        }
        if self.listening {
            self.missed += 1;
        }
        false
    }

    /// Whether `emit` would queue an event now, without counting a miss.
    pub(crate) fn fits(&self) -> bool {
        self.listening && self.room_left() >= self.needed()
    }

    /// Queues `event` if there is room; counts it as missed otherwise. Returns whether queued.
    pub(crate) fn emit(&mut self, event: Event) -> bool {
        if !self.has_room() {
            return false;
        }
        if self.missed > 0 {
            let missed = std::mem::take(&mut self.missed);
            self.queue.push_back(Box::new(Event::Lagged { missed }));
        }
        self.queue.push_back(Box::new(event));
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
        true
    }

    /// The next event for `Events`; `None` once the client stopped and all were read.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<EventBox>> {
        if let Some(event) = self.queue.pop_front() {
            if self.queue.is_empty() && self.queue.capacity() > EVENT_SLOTS_KEPT {
                self.queue = VecDeque::new();
            }
            if let Some(driver) = self.room.take() {
                driver.wake();
            }
            return Poll::Ready(Some(event));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        match &mut self.reader {
            Some(waker) => waker.clone_from(cx.waker()),
            None => self.reader = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Ready once an event fits (`true`) or `Events` is gone (`false`), for a message held for
    /// the events stream.
    pub(crate) fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if !self.listening || self.fits() {
            return Poll::Ready(self.listening);
        }
        self.room = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The application dropped `Events`: what it held is dropped, and nothing more queued.
    pub(crate) fn close(&mut self) {
        self.listening = false;
        self.queue = VecDeque::new();
        self.reader = None;
        if let Some(driver) = self.room.take() {
            driver.wake();
        }
    }

    /// The client stopped: `Events` ends after what is queued.
    pub(super) fn end(&mut self) {
        self.ended = true;
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn poll_recv(sink: &mut EventSink) -> Poll<Option<EventBox>> {
        sink.poll_recv(&mut Context::from_waker(Waker::noop()))
    }

    fn poll_room(sink: &mut EventSink) -> Poll<bool> {
        sink.poll_room(&mut Context::from_waker(Waker::noop()))
    }

    fn recv(sink: &mut EventSink) -> Option<Event> {
        match poll_recv(sink) {
            Poll::Ready(Some(event)) => Some(*event),
            Poll::Ready(None) => panic!("ended"),
            Poll::Pending => None,
        }
    }

    #[test]
    fn an_empty_queue_holds_no_memory_and_gives_it_back_once_read() {
        let mut sink = EventSink::new(256);
        assert_eq!(sink.queue.capacity(), 0);
        for _ in 0..100 {
            assert!(sink.emit(Event::Error(Error::Closed)));
        }
        assert!(sink.queue.capacity() >= 100);
        while recv(&mut sink).is_some() {}
        assert_eq!(sink.queue.capacity(), 0, "emptied: back to nothing");
        // A few events at a time keep their slots: no allocation per event.
        sink.emit(Event::Error(Error::Closed));
        let kept = sink.queue.capacity();
        assert!(recv(&mut sink).is_some());
        assert_eq!(sink.queue.capacity(), kept);
    }

    #[test]
    fn a_full_queue_counts_what_it_misses_and_reports_it_first() {
        let mut sink = EventSink::new(2);
        assert!(sink.emit(Event::Error(Error::Closed)));
        assert!(sink.emit(Event::Error(Error::Closed)));
        assert!(!sink.emit(Event::Error(Error::Closed)));
        assert!(!sink.has_room());
        assert!(!sink.fits());
        assert_eq!(sink.missed, 2);
        // One slot free is not enough: the lag report needs one too.
        assert!(recv(&mut sink).is_some());
        assert!(!sink.fits());
        assert_eq!(poll_room(&mut sink), Poll::Pending);
        assert!(!sink.emit(Event::Error(Error::Closed)));
        assert!(recv(&mut sink).is_some());
        assert_eq!(poll_room(&mut sink), Poll::Ready(true));
        assert!(sink.emit(Event::Error(Error::NotSent)));
        assert!(matches!(recv(&mut sink), Some(Event::Lagged { missed: 3 })));
        assert!(matches!(
            recv(&mut sink),
            Some(Event::Error(Error::NotSent))
        ));
        assert_eq!(sink.missed, 0);
    }

    #[test]
    fn the_stream_ends_after_what_is_queued_once_the_client_stopped() {
        let mut sink = EventSink::new(8);
        assert!(poll_recv(&mut sink).is_pending());
        assert!(sink.reader.is_some(), "the reader waits to be woken");
        sink.emit(Event::Error(Error::Closed));
        assert!(sink.reader.is_none(), "woken by the event");
        sink.end();
        assert!(matches!(recv(&mut sink), Some(Event::Error(Error::Closed))));
        assert!(matches!(poll_recv(&mut sink), Poll::Ready(None)));
        assert!(matches!(poll_recv(&mut sink), Poll::Ready(None)));
    }

    #[test]
    fn dropped_events_take_nothing_more_and_release_a_waiting_driver() {
        let mut sink = EventSink::new(1);
        sink.emit(Event::Error(Error::Closed));
        assert_eq!(poll_room(&mut sink), Poll::Pending);
        assert!(sink.room.is_some());
        sink.close();
        assert!(sink.room.is_none(), "the driver is woken");
        assert_eq!(poll_room(&mut sink), Poll::Ready(false));
        assert!(sink.is_closed());
        assert!(!sink.has_room());
        assert!(!sink.emit(Event::Error(Error::Closed)));
        assert_eq!(sink.queue.capacity(), 0);
        assert_eq!(sink.missed, 0, "nobody to report a lag to");
    }
}
