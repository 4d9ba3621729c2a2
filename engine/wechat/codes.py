"""The platform's enumerations and how each maps onto the engine's vocabulary: one table per
platform field, in one place, so a change on the platform's side is one edit here.

Source: ../shared/notes/wechat-aftersale-api.md (the platform's published API; status labels
as the docs and SDKs give them). Where the engine has no counterpart the table says why.
"""
from __future__ import annotations

# -- after_sale_order.status ----------------------------------------------------------------------
# platform status -> engine ticket status. A status missing here is in NOT_NEGOTIABLE below (with
# the reason) or is unknown to us (an error that lists the known ones).
STATUS_TO_TICKET: dict[str, str] = {
    "MERCHANT_PROCESSING": "merchant_processing",        # 商家受理中
    "USER_WAIT_CONFIRM_UPDATE": "awaiting_buyer_response",  # 待用户处理商家协商 (a proposal is pending)
    "USER_WAIT_RETURN": "awaiting_buyer_return",         # 待买家退货
    "MERCHANT_WAIT_RECEIPT": "awaiting_merchant_receipt",  # 待商家收货
    "MERCHANT_REJECT_REFUND": "merchant_rejected",       # 商家拒绝退款 (the buyer may still act)
    "MERCHANT_REJECT_RETURN": "merchant_rejected",       # 商家拒绝退货退款
    # 物流线上拦截中: the merchant asked the carrier to intercept (四-4.3) and is still handling
    # the ticket; modelled as merchant_processing with the interception recorded.
    "WAIT_PACKAGE_INTERCEPT": "merchant_processing",
    # 商家逾期未退款: the merchant let the deadline pass; the platform refunds on its own
    # (its refund reasons 9 and 11: 「…超时，平台(自动同意)退款」). Nothing is left to negotiate.
    "MERCHANT_OVERDUE_REFUND": "refunding",
    "PLATFORM_REFUNDING": "refunding",                   # 平台退款中
    # 平台退款失败: the refund is decided and only the payment failed; the platform retries it.
    "PLATFORM_REFUND_FAIL": "refunding",
    "MERCHANT_REFUND_SUCCESS": "refunded",               # 退款完成
    "MERCHANT_RETURN_SUCCESS": "refunded",               # 退货退款完成
    "USER_CANCELD": "cancelled",                         # 用户取消申请 (sic: the platform's spelling)
    "MERCHANT_FAIL": "closed",                           # 售后关闭
    "MERCHANT_REFUND_RETRY_FAIL": "closed",              # 商家打款失败，客服关闭售后
    # 平台审核中 (in the current docs, not in the older notes): the platform is reviewing the ticket,
    # i.e. it has stepped in; the merchant's moves wait for it like in 平台介入中.
    "PLATFORM_PROCESSING": "platform_intervention",
}

# Statuses in which no negotiation rule applies, with the reason given in the error.
NOT_NEGOTIABLE: dict[str, str] = {
    # 退货退款关闭 is not terminal (the platform may step in), but nothing the engine models is open:
    # once the platform steps in the order carries a complaint_id and maps to platform_intervention.
    "RETURN_CLOSED": "退货退款关闭: the return was closed; until the platform steps in (complaint_id set) "
                     "there is nothing to negotiate",
    "USER_WAIT_CONFIRM": "待用户确认: the ticket waits for a buyer confirmation that is not part of 售后协商",
    "USER_WAIT_HANDLE_MERCHANT_AFTER_SALE": "待用户处理商家代发起的售后申请: an after-sale the merchant filed "
                                            "for the buyer is not a negotiation",
    # exchange / reship flows: out of the guide's scope (it covers 仅退款 and 退货退款 only)
    "MERCHANT_REJECT_EXCHANGE": "商家拒绝换货: exchanges are out of scope (the guide covers refund_only and return_refund)",
    "MERCHANT_REJECT_RESHIP": "商家拒绝发货: reshipping is out of scope (the guide covers refund_only and return_refund)",
    "USER_WAIT_RECEIPT": "待用户收货: exchange goods on their way are out of scope (the guide covers refund_only and return_refund)",
    "MERCHANT_EXCHANGE_SUCCESS": "换货完成: exchanges are out of scope (the guide covers refund_only and return_refund)",
}

ALL_STATUSES: tuple[str, ...] = tuple(STATUS_TO_TICKET) + tuple(NOT_NEGOTIABLE)

# Ticket statuses after which the buyer can no longer escalate; a complaint_id on any other
# status means the platform has stepped in (平台介入中).
TERMINAL_TICKET_STATUSES = frozenset({"refunding", "refunded", "cancelled", "closed"})

# -- after_sale_order.type ------------------------------------------------------------------------
ORDER_TYPE_TO_REFUND_TYPE: dict[str, str] = {"REFUND": "refund_only", "RETURN": "return_refund"}
OUT_OF_SCOPE_ORDER_TYPES = {
    "EXCHANGE": "换货 (exchange) is out of scope: the guide covers 仅退款 and 退货退款 only",
    # in the current docs, not in the older notes: 补发 is neither 仅退款 nor 退货退款
    "RESHIP": "补发 (reship) is out of scope: the guide covers 仅退款 and 退货退款 only",
}

# -- merchantupdateaftersale.type / merchant_update_detail.*_after_sale_type -------------------
AFTER_SALE_TYPE_TO_REFUND_TYPE: dict[int, str] = {1: "refund_only", 2: "return_refund"}

# -- merchant_update_type (the negotiation type) --------------------------------------------------
# Mirrors the policy's negotiation_types[].platform_code; kept here too because the platform's
# numbering is fixed by the API, while the policy decides which types exist in a version.
MERCHANT_UPDATE_TYPE: dict[int, str] = {1: "invite_cancel", 2: "request_evidence", 3: "modify_request"}

# -- error codes ------------------------------------------------------------------------------------
NEGOTIATION_REQUIRED = 10021068   # rejectapply: 「当前售后暂不支持直接拒绝，需先使用「售后协商」…」
STATUS_DOES_NOT_ALLOW = 10021041  # the after-sale's status does not allow the operation
OPEN_COMPLAINT = 10021051         # rejectapply: 存在进行中的纠纷单

# engine code -> the platform's errcode for the same refusal. Only refusals the platform
# documents; an engine code missing here has no published counterpart (platform_view says null).
PLATFORM_ERROR_BY_CODE: dict[str, int] = {
    "NEGOTIATION_REQUIRED_FIRST": NEGOTIATION_REQUIRED,
    "OPEN_COMPLAINT": OPEN_COMPLAINT,
    "STATUS_NOT_ALLOWED": STATUS_DOES_NOT_ALLOW,
    # while USER_WAIT_CONFIRM_UPDATE the platform's status forbids the merchant's own moves
    "AWAITING_BUYER_RESPONSE": STATUS_DOES_NOT_ALLOW,
    # modifying a proposal that is not pending: the status is not USER_WAIT_CONFIRM_UPDATE
    "NO_PENDING_PROPOSAL": STATUS_DOES_NOT_ALLOW,
}

PLATFORM_ERROR_TEXT: dict[int, str] = {
    NEGOTIATION_REQUIRED: "当前售后暂不支持直接拒绝，需先使用「售后协商」与买家沟通",
    STATUS_DOES_NOT_ALLOW: "当前售后单状态不允许该操作",
    OPEN_COMPLAINT: "存在进行中的纠纷单",
}

# merchant action -> the endpoint that performs it (POST .../channels/ec/aftersale/<endpoint>).
# Only endpoints the published API names; the 四 features have none documented here.
ENDPOINT_BY_ACTION: dict[str, str] = {
    "agree": "acceptapply",
    "reject": "rejectapply",
    "negotiate": "merchantupdateaftersale",
    "modify_negotiation": "merchantupdateaftersale",
}

# Values of `deadline` below this are a count of seconds left, at or above it an absolute epoch.
# 10**9 s is 2001-09-09 as an epoch and ~31.7 years as a countdown: no real value is ambiguous.
DEADLINE_EPOCH_THRESHOLD = 10**9
