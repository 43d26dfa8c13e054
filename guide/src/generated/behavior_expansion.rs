fn bank_account(balance: i64) -> ::casty::Behavior<AccountMsg> {
    ::casty::__private::assert_state::<i64>();
    ::casty::__private::assert_context::<ActorContext<AccountMsg>, AccountMsg>();
    #[allow(clippy::redundant_closure_call)]
    #[inline(always)]
    fn __casty_body(
        _ctx: &mut ::casty::ActorContext<AccountMsg>,
        msg: AccountMsg,
        (mut balance,): (i64,),
        __casty_slot: &mut ::core::option::Option<(i64,)>,
    ) -> Behavior<AccountMsg> {
        let __casty_out: Behavior<AccountMsg> = (|| -> Behavior<AccountMsg> {
            match msg {
                AccountMsg::Deposit(d) => balance += d.amount,
                AccountMsg::GetBalance(g) => g.reply_to.tell(balance),
            }
            Behaviors::same()
        })();
        *__casty_slot = ::core::option::Option::Some((balance,));
        __casty_out
    }
    ::casty::__private::stateful::<
        AccountMsg,
        AccountMsg,
        _,
        _,
        _,
    >((balance,), __casty_body)
}
