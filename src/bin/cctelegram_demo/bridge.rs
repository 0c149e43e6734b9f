//! The bridge's simulated Telegram side: messages queue up while it is failing and are
//! delivered in one go once it recovers, so the runbook sees a backlog drain.

use crate::fault::Mode;

#[derive(Default)]
pub(crate) struct Bridge {
    messages_sent: u64,
    queue_depth: u64,
}

impl Bridge {
    /// Bookkeeping for the current mode; returns (connected, queue_depth, messages_sent).
    pub(crate) fn status(&mut self, mode: Mode) -> (bool, u64, u64) {
        let connected = !matches!(mode, Mode::Fail | Mode::Error5xx);
        if connected && self.queue_depth > 0 {
            self.messages_sent += self.queue_depth;
            self.queue_depth = 0;
        }
        (connected, self.queue_depth, self.messages_sent)
    }

    /// One message to deliver: sent if Telegram is reachable, queued otherwise.
    pub(crate) fn send(&mut self, mode: Mode) {
        let (connected, _, _) = self.status(mode);
        if connected {
            self.messages_sent += 1;
        } else {
            self.queue_depth += 1;
        }
    }
}
