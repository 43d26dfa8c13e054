#[derive(::core::fmt::Debug)]
#[derive(::casty::__private::serde::Serialize, ::casty::__private::serde::Deserialize)]
#[serde(crate = "::casty::__private::serde")]
pub enum AccountMsg {
    Deposit(Deposit),
    Withdraw { amount: i64, reply_to: ActorRef<String> },
    GetBalance { reply_to: ActorRef<i64> },
}
#[automatically_derived]
impl ::core::convert::From<Deposit> for AccountMsg {
    #[inline]
    fn from(m: Deposit) -> Self {
        AccountMsg::Deposit(m)
    }
}
#[automatically_derived]
impl ::casty::Message for AccountMsg {
    fn manifest() -> ::std::borrow::Cow<'static, str> {
        ::std::borrow::Cow::Borrowed(
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!(AccountMsg)),
        )
    }
    fn wire_decoder() -> ::std::option::Option<::casty::wire::WireDecoder<Self>> {
        ::std::option::Option::Some(::casty::wire::cbor_decoder::<Self>)
    }
}
#[automatically_derived]
impl AccountMsg {
    /// Builds [`AccountMsg::Withdraw`] for an ask: the asker's reply address fills `reply_to`.
    #[allow(dead_code, clippy::too_many_arguments)]
    #[inline]
    pub fn withdraw(amount: i64) -> impl ::core::ops::FnOnce(ActorRef<String>) -> Self {
        move |reply_to| AccountMsg::Withdraw {
            amount,
            reply_to,
        }
    }
    /// Builds [`AccountMsg::GetBalance`] for an ask: the asker's reply address fills `reply_to`.
    #[allow(dead_code)]
    #[inline]
    pub fn get_balance(reply_to: ActorRef<i64>) -> Self {
        AccountMsg::GetBalance { reply_to }
    }
}
