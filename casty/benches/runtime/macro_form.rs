//! The same actors written with the `#[behavior]` macro, as the guide's "Macros" chapter writes
//! them: the state is the fn's third parameter and the recursion `counter(count + x)` is the
//! transition. The protocols are the ones of the functional form, so only the behaviors differ.

use std::sync::Arc;

use casty::{behavior, ActorContext, Behavior, Behaviors};

use crate::common::Done;
use crate::guide::{CounterMsg, EchoMsg, Hello};

/// The counter of W1 and W5.
#[behavior]
pub(crate) fn counter(
    _ctx: &mut ActorContext<CounterMsg>,
    msg: CounterMsg,
    count: u64,
) -> Behavior<CounterMsg> {
    match msg {
        CounterMsg::Add(x) => counter(count + x),
        CounterMsg::Get { reply_to } => {
            reply_to.tell(count);
            Behaviors::same()
        }
    }
}

/// The echo of W2.
#[behavior]
pub(crate) fn echo(_ctx: &mut ActorContext<EchoMsg>, msg: EchoMsg) -> Behavior<EchoMsg> {
    match msg {
        EchoMsg::Echo { n, reply_to } => {
            reply_to.tell(n + 1);
            Behaviors::same()
        }
    }
}

/// An actor of W4: counts its one message in `handled`.
#[behavior]
pub(crate) fn greeted(
    _ctx: &mut ActorContext<Hello>,
    _msg: Hello,
    handled: Arc<Done>,
) -> Behavior<Hello> {
    handled.finish_one();
    Behaviors::same()
}
