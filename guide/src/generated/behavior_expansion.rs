fn bank_account(balance: i64) -> ::casty::Behavior<AccountMsg> {
    ::casty::__private::assert_state::<i64>();
    ::casty::__private::assert_context::<ActorContext<AccountMsg>, AccountMsg>();
    #[allow(clippy::redundant_closure_call)]
    #[inline(always)]
    fn __casty_body(
        _ctx: &mut ::casty::ActorContext<AccountMsg>,
        __casty_msg: AccountMsg,
        (mut balance,): (i64,),
    ) -> ::casty::Next<(i64,), AccountMsg> {
        let msg: AccountMsg = <AccountMsg as ::casty::__private::SameMessage<
            AccountMsg,
        >>::from_message(__casty_msg);
        let __casty_out: Behavior<AccountMsg> = (|| -> Behavior<AccountMsg> {
            match msg {
                AccountMsg::Deposit(d) => balance += d.amount,
                AccountMsg::GetBalance(g) => g.reply_to.tell(balance),
            }
            Behaviors::same()
        })();
        ::casty::Next::with((balance,), __casty_out)
    }
    ::casty::Behaviors::stateful::<AccountMsg, _, _>((balance,), __casty_body)
}
