//! Where a [`Context`](crate::Context) keeps its cancellation token: made only
//! when someone needs it, the function asking for it or the host cancelling
//! the call. Most calls finish without either, and a token costs an
//! allocation and a lock on each copy and drop.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

/// A context's cancellation token, made on first use.
#[derive(Debug)]
pub(crate) enum TokenSlot {
    /// The context's own, held by nobody else: copying the context makes the
    /// token first, so the copies share it.
    Own(OnceLock<CancellationToken>),
    /// Shared with the host running the call and with every copy of the context.
    Shared(Arc<OnceLock<CancellationToken>>),
    /// A call's own, just started by its host and not yet copied: starting the
    /// call again (a policy layer inside the host) shares it instead of making
    /// a child, since it is the same call.
    Started(Arc<OnceLock<CancellationToken>>),
}

impl TokenSlot {
    /// A slot whose token is made on first use.
    pub(crate) fn new() -> Self {
        TokenSlot::Own(OnceLock::new())
    }

    /// A slot holding `token`.
    pub(crate) fn with(token: CancellationToken) -> Self {
        TokenSlot::Own(OnceLock::from(token))
    }

    fn cell(&self) -> &OnceLock<CancellationToken> {
        match self {
            TokenSlot::Own(cell) => cell,
            TokenSlot::Shared(cell) | TokenSlot::Started(cell) => cell,
        }
    }

    /// The token, made now if it was not yet.
    pub(crate) fn token(&self) -> &CancellationToken {
        self.cell().get_or_init(CancellationToken::new)
    }

    /// Whether the token was cancelled; one not made yet was not.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cell()
            .get()
            .is_some_and(CancellationToken::is_cancelled)
    }

    /// A slot for a copy of the context, sharing its token.
    pub(crate) fn share(&self) -> Self {
        match self {
            TokenSlot::Own(_) => TokenSlot::with(self.token().clone()),
            TokenSlot::Shared(cell) | TokenSlot::Started(cell) => {
                TokenSlot::Shared(Arc::clone(cell))
            }
        }
    }

    /// Gives the context a token of the call's own, shared with the host through
    /// the returned handle.
    ///
    /// The call's token is a child of the context's when that was made or is
    /// shared (the caller may hold it, and cancelling it must reach the call).
    /// Otherwise nobody holds the context's token, and the call's is made only
    /// when the function asks for it or the host cancels the call.
    ///
    /// A call started and not copied since is the same call started again (the
    /// dispatcher, then its deadline layer): both handles share its token.
    pub(crate) fn start_call(&mut self) -> CallCancellation {
        if let TokenSlot::Started(cell) = &*self {
            return CallCancellation(Arc::clone(cell));
        }
        let cell = match &*self {
            TokenSlot::Own(cell) if cell.get().is_none() => OnceLock::new(),
            parent => OnceLock::from(parent.token().child_token()),
        };
        let cell = Arc::new(cell);
        *self = TokenSlot::Started(Arc::clone(&cell));
        CallCancellation(cell)
    }
}

/// A host's handle on the token of a call it runs.
#[derive(Debug)]
pub(crate) struct CallCancellation(Arc<OnceLock<CancellationToken>>);

impl CallCancellation {
    /// Cancels the call's token. One nobody asked for yet is made cancelled, so
    /// a copy of the context that asks later sees the call cancelled.
    pub(crate) fn cancel(&self) {
        self.0.get_or_init(CancellationToken::new).cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_without_a_parent_makes_no_token_until_asked() {
        let mut slot = TokenSlot::new();
        let call = slot.start_call();
        assert!(slot.cell().get().is_none());
        let copy = slot.share();
        assert!(!copy.is_cancelled());
        call.cancel();
        assert!(slot.is_cancelled());
        assert!(copy.token().is_cancelled(), "a copy asking late sees it");
    }

    #[test]
    fn a_token_asked_for_during_the_call_is_the_one_cancelled() {
        let mut slot = TokenSlot::new();
        let call = slot.start_call();
        let token = slot.token().clone();
        call.cancel();
        assert!(token.is_cancelled());
    }

    #[test]
    fn a_call_under_a_made_token_gets_a_child() {
        let parent = CancellationToken::new();
        let mut slot = TokenSlot::with(parent.clone());
        let call = slot.start_call();
        call.cancel();
        assert!(slot.is_cancelled());
        assert!(
            !parent.is_cancelled(),
            "the call's cancellation stays its own"
        );

        let mut slot = TokenSlot::with(parent.clone());
        let _call = slot.start_call();
        parent.cancel();
        assert!(
            slot.is_cancelled(),
            "the caller's cancellation reaches the call"
        );
    }

    #[test]
    fn a_call_started_twice_is_one_call_but_a_copy_starts_its_own() {
        let mut slot = TokenSlot::new();
        let host = slot.start_call();
        let layer = slot.start_call();
        layer.cancel();
        assert!(slot.is_cancelled(), "both handles cancel the same call");
        drop(host);

        let mut delivery = TokenSlot::new();
        let _stop = delivery.start_call();
        let mut copy = delivery.share();
        let attempt = copy.start_call();
        attempt.cancel();
        assert!(copy.is_cancelled());
        assert!(
            !delivery.is_cancelled(),
            "a copy's call is a child, cancelled on its own"
        );
    }

    #[test]
    fn calls_under_a_shared_slot_get_children_of_its_token() {
        let mut delivery = TokenSlot::new();
        let stop = delivery.start_call();
        let mut first = delivery.share();
        let attempt = first.start_call();
        attempt.cancel();
        assert!(
            !delivery.is_cancelled(),
            "an attempt's timeout stops only it"
        );
        let mut second = delivery.share();
        let _attempt = second.start_call();
        stop.cancel();
        assert!(
            second.is_cancelled(),
            "stopping the delivery stops its attempt"
        );
    }
}
