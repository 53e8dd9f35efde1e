"""Every operator-facing string of the console, in Simplified Chinese (code and logs stay English)."""

from __future__ import annotations

TITLE = "wxbot 运营后台"

ROLE_NAMES = {"admin": "管理员", "operator": "运营", "analyst": "分析师", "clerk": "店员", "token": "接口令牌",
              "system": "系统"}

SIGN_IN = "登录"
SIGN_OUT = "退出登录"
NAME = "用户名"
PASSWORD = "密码"
SIGN_IN_FAILED = "用户名或密码不正确。"
SIGN_IN_LOCKED = "连续 5 次登录失败，该账号已锁定 15 分钟，请稍后再试。"
SIGNED_OUT = "您已退出登录。"

CSRF_FAILED = "表单已失效（安全校验未通过），请刷新页面后重试。未做任何更改。"
FORBIDDEN = "您的角色（{role}）无权进行此操作，需要以下角色之一：{needed}。"
NOT_FOUND = "没有找到该页面或记录。"
UNAVAILABLE = "数据库或缓存暂时不可用，未做任何更改，请稍后重试。"
BAD_REQUEST = "请求无效：{detail}"
ERROR_TITLE = {403: "无权访问", 404: "未找到", 400: "请求无效", 409: "冲突", 422: "未找到", 503: "暂不可用"}
BACK_HOME = "返回首页"

NAV = {
    "home": "首页",
    "members": "会员",
    "anomalies": "异常",
    "tickets": "工单",
    "surveys": "满意度调查",
    "rewards": "奖品",
    "campaigns": "活动",
    "staff": "员工",
    "pushes": "推送",
    "audit": "审计日志",
    "exports": "导出",
    "verify": "核销",
    "stores": "门店",
    "sharing": "渠道码与分享",
    "segments": "会员分层",
    "experiments": "实验",
    "broadcasts": "群发",
    "winback": "流失预警",
    "grants": "人群赠券",
}
HOME_WELCOME = "欢迎，{name}（{role}）"
HOME_HINT = "从左侧菜单选择要处理的事项。"

# --- members (member 360, points adjustment, tier hold) -------------------------------------------
MEMBERS_TITLE = "会员查询"
SEARCH_LABEL = "手机号、openid、邀请码或券码"
SEARCH_BUTTON = "查找"
SEARCH_HINT = "按手机号、公众号或小程序 openid、邀请码、券码精确查找会员。"
SEARCH_NONE = "没有找到与「{q}」匹配的会员。"
SEARCH_NONE_PHONE = "没有找到使用该手机号的会员。"
SEARCH_MANY = "找到 {n} 位会员："
SEARCH_MATCHED = {"phone": "手机号", "openid": "openid", "referral_code": "邀请码", "coupon_code": "券码"}
MEMBER_NOT_FOUND = "没有这个会员。"
MEMBER_TITLE = "会员 #{id}"
MEMBER_STATUS = {"active": "正常", "unsubscribed": "已取消关注", "deleted": "已注销"}
NOT_JOINED = "未注册（访客）"
YES, NO = "是", "否"
NONE = "—"

SECTION_PROFILE = "基本资料"
SECTION_STANDING = "等级与积分"
SECTION_LOTS = "有效积分批次"
SECTION_LEDGER = "积分明细"
SECTION_ORDERS = "订单与退款"
SECTION_COUPONS = "兑换与券码"
SECTION_CAMPAIGNS = "参加的活动"
SECTION_PUSHES = "推送记录"
SECTION_ANOMALIES = "异常"
SECTION_ADJUST = "调整积分"
SECTION_HOLD = "等级保持"

F_PHONE = "手机号"
F_OPENID = "公众号 openid"
F_MP_OPENID = "小程序 openid"
F_UNIONID = "unionid"
F_REFERRAL = "邀请码"
F_BIRTHDAY = "生日"
F_STATUS = "状态"
F_JOINED = "注册时间"
F_CONSENT = "同意隐私说明"
F_CONSENT_VALUE = "{at}（版本 {version}）"
F_MARKETING = "营销消息"
MARKETING_ON = "接收"
MARKETING_OFF = "已退订"
F_LAST_SEEN = "最近互动"
F_TIER = "会员等级"
F_HOLD = "等级保持至"
F_QUALIFYING = "定级积分（近 12 个月）"
F_GAP = "距{tier}还差"
TOP_TIER = "已是最高等级"
F_BALANCE = "积分余额"
REVEAL = "查看完整手机号"
REVEALED = "完整手机号（本次查看已记入审计日志）"

COL_TIME = "时间"
COL_KIND = "类型"
COL_POINTS = "积分"
COL_BALANCE_AFTER = "变动后余额"
COL_REASON = "原因"
COL_BY = "操作人"
COL_AMOUNT = "数量"
COL_REMAINING = "剩余"
COL_EARNED = "获得时间"
COL_EXPIRES = "到期时间"
COL_ORDER = "订单号"
COL_PAID = "实付（元）"
COL_REFUNDED = "已退款（元）"
COL_REFUNDED_POINTS = "扣回积分"
COL_REWARD = "奖品"
COL_COST = "消耗积分"
COL_CODE = "券码"
COL_STATE = "状态"
COL_USED = "核销时间"
COL_CAMPAIGN = "活动"
COL_PAID_POINTS = "已发奖励"
COL_CHANNEL = "渠道"
COL_ATTEMPTS = "尝试次数"
COL_WHY = "未送达原因"
COL_DETAIL = "详情"
EMPTY = "暂无记录。"

COUPON_STATE = {"issued": "未使用", "used": "已核销", "cancelled": "已取消", "expired": "已过期"}
PUSH_STATUS = {"pending": "待发送", "sending": "发送中", "sent": "已送达", "undeliverable": "无法送达",
               "failed": "失败", "dropped": "已放弃", "uncertain": "不确定"}

ADJUST_POINTS = "调整积分（正数增加，负数扣减）"
ADJUST_REASON = "原因（2–200 字，会告知会员）"
ADJUST_BUTTON = "确认调整"
ADJUST_HINT = "最多可扣减 {balance} 积分（当前余额）；超过 1000 积分的调整需要管理员。"
ADJUST_ERRORS = {
    "not_number": "请输入整数积分。",
    "zero": "调整积分不能为 0。",
    "range": "调整积分的绝对值不能超过 {limit}。",
    "length": "请填写原因，{low}–{high} 个字。",
    "over_balance": "扣减超过余额：最多可扣减 {balance} 积分（当前余额）。",
    "large": "超过 1000 积分的调整需要管理员角色。",
    "not_member": "该用户不是会员（未注册或已注销），不能调整积分。",
    "format": "表单已失效，请刷新页面后重试。",
    "taken": "表单已失效，请刷新页面后重试。",
}
ADJUSTED = "积分已调整，会员将收到通知。"

HOLD_TIER = "保持等级"
HOLD_UNTIL = "保持至（含当日）"
HOLD_BUTTON = "设置等级保持"
HOLD_CLEAR = "取消等级保持"
HOLD_HINT = "保持期内月度评级不会降低该会员的等级（消费仍可升级）。"
HOLD_ERRORS = {"tier": "请选择一个会员等级。", "until": "请选择晚于今天的日期。"}
HELD = "等级保持已设置。"
HOLD_CLEARED = "等级保持已取消。"
SECTION_GRANT = "赠送优惠券"
GRANT_REWARD = "奖品"
GRANT_REASON = "原因（2–200 字，会告知会员）"
GRANT_BUTTON = "确认赠送"
GRANT_HINT = "赠券不扣积分，计入奖品库存与限领数量。"
GRANT_NONE = "暂无可赠送的奖品。"
GRANT_ERRORS = {
    "reward": "请选择一个奖品。",
    "length": "请填写原因，{low}–{high} 个字。",
    "format": "表单已失效，请刷新页面后重试。",
    "not_member": "该用户不是会员（未注册或已注销），不能赠券。",
    "out_of_stock": "该奖品已无库存或已达发放总量。",
    "limit_reached": "该会员已达此奖品的每人限领数量（{limit} 张）。",
    "reward_ended": "该奖品已下架或不在有效期内。",
}
GRANTED = "优惠券已赠送，会员将收到通知。"
GRANTED_MARK = "赠送"
DONE = {"adjusted": ADJUSTED, "held": HELD, "cleared": HOLD_CLEARED, "granted": GRANTED}
# --- Pushes, audit log, exports, coupon verification (issue 14 items 7-9) -----------------------------
FILTER = "筛选"
ALL = "全部"
OLDER = "更早的记录 →"
NEWEST = "← 最新"
NONE_YET = "暂无记录。"
TIME = "时间"

PUSHES_TITLE = "推送"
PUSH_TITLE = "推送 #{id}"
PUSH_STATES = {"pending": "待发送", "sending": "发送中", "sent": "已送达", "undeliverable": "无法送达",
               "failed": "失败", "dropped": "已丢弃", "uncertain": "状态不明"}
PUSH_STATE = "状态"
PUSH_KIND = "类型"
PUSH_MEMBER = "会员"
PUSH_CHANNEL = "渠道"
PUSH_ATTEMPTS = "尝试次数"
PUSH_LAST_ERROR = "最后错误"
PUSH_NEXT_AT = "下次尝试"
PUSH_CREATED = "创建时间"
PUSH_SENT_AT = "送达时间"
PUSH_TEXT = "推送内容"
PUSH_CATEGORY = "类别"
PUSH_ATTEMPT_LIST = "发送记录"
PUSH_ERRCODE = "错误码"
PUSH_DETAIL = "说明"
PUSH_NO_MEMBER = "（无会员）"

AUDIT_TITLE = "审计日志"
AUDIT_ACTOR = "操作人"
AUDIT_ACTION = "操作"
AUDIT_TARGET = "对象"
AUDIT_SINCE = "起始日期"
AUDIT_UNTIL = "截止日期"
AUDIT_CHANGE = "变更"
AUDIT_CLIENT = "来源地址"
AUDIT_READ_ONLY = "审计日志只追加、不可修改或删除。"
# Every action the audit trail records, as an operator reads it (the key stays beside it for the filter).
AUDIT_ACTIONS = {
    "sign_in": "登录控制台", "operator.add": "添加运营账号", "operator.passwd": "修改运营账号密码",
    "operator.disable": "停用运营账号", "phone.reveal": "查看完整手机号", "points.adjust": "调整积分",
    "coupon.grant": "赠送优惠券", "coupon.grant_audience": "向人群赠送优惠券",
    "broadcast.create": "新建群发", "broadcast.cancel": "取消群发", "list.upload": "上传会员名单",
    "member.merge": "合并会员", "tier.hold": "设置等级与保级", "redemption.cancel": "作废兑换", "coupon.use": "核销券",
    "reward.create": "新建奖品", "reward.edit": "修改奖品", "reward.deactivate": "下架奖品",
    "reward.codes_import": "导入券码", "campaign.end": "提前结束活动", "staff.add": "添加员工",
    "staff.role": "修改员工角色", "staff.remove": "移除员工", "store.add": "新建门店", "store.rotate": "更换门店凭证",
    "store.revoke": "吊销门店凭证", "store.enable": "启用门店", "store.disable": "停用门店",
    "channel.create": "新建渠道码",
    "ticket.answer": "回复工单", "ticket.resolve": "解决工单", "ticket.assign": "分派工单",
    "anomaly.acknowledge": "确认异常", "anomaly.resolve": "解决异常", "export.members": "导出会员",
    "export.ledger": "导出积分流水", "export.redemptions": "导出兑换记录",
    "survey.create": "新建满意度调查", "survey.pause": "暂停满意度调查", "survey.resume": "恢复满意度调查",
    "experiment.create": "新建实验", "experiment.stop": "停止实验",
}
BAD_DATE = "日期格式应为 YYYY-MM-DD。"

EXPORTS_TITLE = "导出"
EXPORTS_HINT = ("导出为 CSV（UTF-8，可直接用 Excel 打开）。手机号一律打码；openid 是微信给的匿名编号，保留以便对账；"
                "尚可使用的券码只保留末四位。每次导出都会记入审计日志。")
EXPORT_KINDS = {"members": "会员（按入会时间）", "ledger": "积分流水", "redemptions": "兑换记录"}
EXPORT_KIND = "导出内容"
EXPORT_SINCE = "起始日期"
EXPORT_UNTIL = "截止日期（含）"
EXPORT_BUTTON = "下载 CSV"
EXPORT_RANGE_REQUIRED = "请填写日期。"
EXPORT_RANGE_ORDER = "起始日期不能晚于截止日期。"
EXPORT_RANGE_TOO_LONG = "时间范围最长 366 天。"
EXPORT_HEADERS = {
    "members": ("会员ID", "openid", "手机号（打码）", "等级", "积分余额", "累计获得积分", "状态", "拒收营销",
                "推荐码", "入会时间"),
    "ledger": ("流水ID", "会员ID", "时间", "类型", "积分变动", "变动后余额", "原因", "关联", "操作人"),
    "redemptions": ("兑换ID", "会员ID", "奖品", "积分", "券码", "状态", "兑换时间", "到期时间", "核销时间",
                    "取消时间", "赠送原因"),
}

VERIFY_TITLE = "核销"
VERIFY_CODE = "券码"
VERIFY_LOOKUP = "查询"
VERIFY_CONFIRM = "确认核销"
VERIFY_REWARD = "奖品"
VERIFY_STATE = "状态"
VERIFY_EXPIRES = "有效期至"
VERIFY_OWNER = "会员手机号"
VERIFY_STORE = "门店"
VERIFY_BY = "核销人"
VERIFY_STATES = {"issued": "可使用", "used": "已核销", "cancelled": "已取消", "expired": "已过期"}
VERIFY_UNKNOWN = "没有这个券码，请核对后重试。"
VERIFY_CODE_REQUIRED = "请输入券码。"
VERIFY_USED = "该券已于 {at} 核销，不能再次使用。"
VERIFY_CANCELLED = "该券已取消，不能使用。"
VERIFY_EXPIRED = "该券已于 {at} 过期，不能使用。"
VERIFY_DONE = "核销成功：{code}（{reward}）。"
VERIFY_MINE = "本店核销记录"
VERIFY_ALL = "最近核销记录"
# --- anomaly queue (issue 14 item 6) -------------------------------------------------------------------
ANOMALY_KINDS = {
    "daily_cap": "非消费积分超出每日上限",
    "draw_prize_unpaid": "抽奖奖品未能发放（无补偿积分）",
    "refund_shortfall": "退款扣回积分不足",
    "redeem_spree": "单日兑换次数过多",
    "duplicate_membership": "重复会员（同一 unionid）",
    "job_skipped": "定时任务未补跑",
    "push_uncertain": "推送状态不确定",
}
ANOMALY_STATES = {"open": "待处理", "acknowledged": "已确认", "resolved": "已解决"}
ANOMALIES_TITLE = "异常队列"
ANOMALY_TITLE = "异常 #{id}"
ANOMALY_ANY = "全部"
ANOMALY_KIND = "类型"
ANOMALY_STATE = "状态"
ANOMALY_FROM = "起始日期"
ANOMALY_TO = "截止日期"
ANOMALY_FILTER = "筛选"
ANOMALY_ID = "编号"
ANOMALY_MEMBER = "会员"
ANOMALY_DETAIL = "详情"
ANOMALY_CREATED = "发生时间"
ANOMALY_NOTE = "处理备注"
ANOMALY_HANDLED_BY = "处理人"
ANOMALY_ACKNOWLEDGED_AT = "确认时间"
ANOMALY_RESOLVED_AT = "解决时间"
ANOMALY_NONE = "没有符合条件的异常。"
ANOMALY_ACKNOWLEDGE = "确认"
ANOMALY_RESOLVE = "解决"
ANOMALY_NOTE_HINT = "备注（2–500 字）"
ANOMALY_NOTE_INVALID = "请填写 2–500 字的备注。"
ANOMALY_BAD_DATE = "日期格式应为 YYYY-MM-DD。"
ANOMALY_WRONG_STATE = "该异常当前为「{state}」，不能{action}。未做任何更改。"
ANOMALY_ACKNOWLEDGED = "已确认该异常。"
ANOMALY_RESOLVED = "已解决该异常。"
ANOMALY_MERGE = "合并这两个会员…"
ANOMALY_BACK = "返回异常队列"
# The operations WeCom robot's message for a new anomaly (no phone numbers: details never carry one).
ANOMALY_ANNOUNCE = "【运营异常】{label}\n会员：{member}\n处理：{path}\n详情：{detail}"
ANOMALY_NO_MEMBER = "无"

# --- guided merge of a duplicate membership ------------------------------------------------------------
MERGE_TITLE = "合并重复会员"
MERGE_KEEP = "保留会员"
MERGE_DROP = "并入（将被注销）的会员"
MERGE_PREVIEW = "合并预览：以下内容将从会员 {drop} 移到会员 {keep}"
MERGE_LEDGER = "积分流水（全部保留）"
MERGE_LOTS = "有效积分批次"
MERGE_LOT_POINTS = "批次内积分"
MERGE_REDEMPTIONS = "兑换记录"
MERGE_COUPONS = "未使用的券"
MERGE_CAMPAIGNS = "活动参与（移动 / 与保留会员重复而合并）"
MERGE_ORDERS = "订单"
MERGE_CHECKINS = "签到（移动 / 同日重复留在原会员）"
MERGE_OUTBOX = "推送记录"
MERGE_DOORS = "移到保留会员的入口"
MERGE_BALANCE = "合并后余额"
MERGE_TIER = "合并后等级"
MERGE_NOTE = "处理备注（记入异常，2–500 字）"
MERGE_CONFIRM = "确认合并"
MERGE_SWAP = "改为保留会员 {id}"
MERGE_DONE = "已合并：会员 {drop} 并入会员 {keep}，余额 {balance}。"
MERGE_SAME = "保留与并入的会员不能是同一个。"
MERGE_NO_UNIONID = "这两个会员没有相同的 unionid，不能合并。"
MERGE_ALREADY = "会员 {id} 已被合并或注销，不能再合并。"
MERGE_UNKNOWN = "会员 {id} 不存在。"
MERGE_ASK = "请输入两个会员编号。"
MERGE_NONE = "无"
# --- rewards, code pools, campaigns, staff (bot/console/rewards.py, campaigns.py, staff.py) --------------
REWARDS_TITLE = "奖品"
REWARD_NEW = "新建奖品"
REWARD_EDIT = "编辑奖品"
REWARD_SAVE = "保存"
REWARD_DEACTIVATE = "下架"
REWARD_CODES = "导入券码"
REWARDS_EMPTY = "还没有奖品。"
REWARD_FIELDS = {
    "id": "编号", "name": "名称", "description": "说明", "cost": "所需积分", "kind": "类型", "stock": "库存",
    "per_member_limit": "每人限兑", "total_limit": "总限量", "min_tier": "最低等级", "validity_days": "券有效天数",
    "starts_at": "上架时间", "ends_at": "下架时间", "active": "上架中", "issued_count": "已兑出",
}
REWARD_HINTS = {"stock": "留空表示不限", "per_member_limit": "留空表示不限", "total_limit": "留空表示不限",
                "min_tier": "留空表示所有等级", "starts_at": "留空表示立即", "ends_at": "留空表示长期"}
REWARD_KINDS = {"coupon": "优惠券（系统生成券码）", "code_pool": "券码池（导入券码）", "gift": "礼品"}
ANY_TIER = "所有等级"
UNLIMITED = "不限"
ACTIONS = "操作"
FORM_INVALID = "表单有误，请按提示修改后重新提交。未做任何更改。"
REWARD_DONE = {"created": "奖品已创建。", "saved": "奖品已保存。", "deactivated": "奖品已下架。"}
# A field's error, by pydantic's error type (the rule itself lives in bot/api/reward_input.py).
FIELD_ERRORS = {
    "missing": "必填。", "string_too_short": "不能为空。", "string_too_long": "最多 {max_length} 个字。",
    "too_short": "不能为空。", "too_long": "最多 {max_length} 个字。",
    "int_type": "请输入整数。", "int_parsing": "请输入整数。", "greater_than": "必须大于 {gt}。",
    "greater_than_equal": "不能小于 {ge}。", "less_than_equal": "不能大于 {le}。", "literal_error": "请从列表中选择。",
    "tier_unknown": "等级必须是以下之一：{tiers}。", "ends_before_starts": "下架时间必须晚于上架时间。",
    "datetime_parsing": "请输入有效的日期时间。", "datetime_type": "请输入有效的日期时间。",
    "datetime_from_date_parsing": "请输入有效的日期时间。",
    "clerk_store_required": "门店店员需要选择所在门店。", "store_only_clerk": "只有门店店员绑定门店，请选择“—”。",
}
FIELD_INVALID = "取值无效（不能含有控制字符，日期须在 2000 至 2200 年之间）。"

CODES_TITLE = "导入券码：{name}"
CODES_HINT = "上传 UTF-8 编码的 CSV 文件：第一列为券码，每行一个；首行为 code 时视为表头。每个券码最长 64 个字符。"
CODES_FILE = "CSV 文件"
CODES_UPLOAD = "上传并导入"
CODES_NOT_POOL = "只有「券码池」类型的奖品可以导入券码。"
CODES_IN_POOL = "券码池中可用券码：{available} 个。"
CODES_RESULT = "读取 {received} 行，导入 {added} 个券码，拒绝 {refused} 行。"
CODES_NONE_VALID = "文件中没有可导入的券码，未做任何更改。"
CODES_BAD_FILE = "无法读取文件：请上传 UTF-8 编码、不超过 5 MB 的 CSV 文件。"
CODES_REFUSED = "被拒绝的行"
CODES_LINE, CODES_CODE, CODES_REASON = "行号", "内容", "原因"
CODE_REASONS = {"empty": "券码为空", "too_long": "超过 64 个字符", "nul": "含有空字符（NUL）",
                "duplicate": "与文件中前面的行重复", "taken": "已在券码池中（或已发放）"}

CAMPAIGNS_TITLE = "活动"
CAMPAIGNS_EMPTY = "还没有活动。"
CAMPAIGN_FIELDS = {
    "title": "标题", "code": "活动码", "kind": "类型", "status": "状态", "participants": "参加人数",
    "paid": "已发放 / 预算", "ends_at": "结束时间", "created_by": "发起人", "points": "每人积分", "goal": "目标",
    "cap": "人数上限", "created_at": "发起时间", "settled_at": "结算时间", "prize": "奖品（券）",
    "fallback": "补偿积分（发券失败时）",
}
CAMPAIGN_KINDS = {"join_bonus": "报名有礼", "group_buy": "拼团", "checkin_challenge": "打卡挑战",
                  "lucky_draw": "抽奖"}
CAMPAIGN_STATES = {"open": "进行中", "settled": "已结束"}
CAMPAIGN_JOINS = "每日参加人数"
CAMPAIGN_NO_JOINS = "还没有人参加。"
CAMPAIGN_DAY, CAMPAIGN_COUNT = "日期", "人数"
CAMPAIGN_END = "提前结束并结算"
CAMPAIGN_END_CONFIRM = "确定现在结束该活动并按规则结算吗？此操作不可撤销。"
CAMPAIGN_ENDED = "活动已提前结束并完成结算，累计发放 {total} 积分。"
CAMPAIGN_WAS_ENDED = "该活动此前已经结束，未做任何更改。"
# The campaign report (storage/campaignreport.py) and campaigns side by side.
CAMPAIGN_REPORT = "活动报告"
CAMPAIGN_REPORT_TITLE = "活动报告：{title}"
CAMPAIGN_COMPARE = "活动对比"
CAMPAIGN_COMPARE_HINT = "按活动日期筛选（与所选日期有交集的活动）；留空显示全部活动（最近 {limit} 个）。"
CAMPAIGN_COMPARE_FROM, CAMPAIGN_COMPARE_TO = "开始日期", "结束日期"
CAMPAIGN_COMPARE_EMPTY = "所选日期内没有活动。"
CAMPAIGN_BAD_RANGE = "开始日期不能晚于结束日期。"
CAMPAIGN_REPORT_DAYS = "活动期 {first} 至 {last}；活动后 14 天至 {after}；活动前 28 天自 {before}。"
CAMPAIGN_REPORT_FIGURES = {
    "participants": "参加人数", "points_paid": "已发放积分", "cost": "积分成本",
    "sales": "参加者销售额（活动期 + 后 14 天）",
    "per_participant": "参加者人均销售额", "comparison_members": "对照组人数", "per_comparison": "对照组人均销售额",
    "incremental": "增量销售额", "roi": "ROI（增量销售额 ÷ 成本）", "tiers": "参加者等级",
    "coupons": "已发奖品券（不计入积分成本）",
}
CAMPAIGN_REPORT_COUPONS = "「{reward}」× {count}"
CAMPAIGN_REPORT_TABLE = "参加者与对照组的消费"
CAMPAIGN_REPORT_COLUMNS = {
    "group": "人群", "window": "时间段", "members": "人数", "orders": "订单数", "sales": "销售额（扣除退款）",
    "per_member": "人均销售额",
}
CAMPAIGN_REPORT_GROUPS = {"participants": "参加者", "comparison": "对照组"}
CAMPAIGN_REPORT_WINDOWS = {
    "before": "活动前 28 天", "during": "活动期间", "after": "活动后 14 天", "total": "活动期 + 后 14 天",
}
CAMPAIGN_REPORT_NOTE = (
    "口径说明：按本计划时区的自然日计算。活动期为发起当日至结束（或提前结束）当日；订单按下单时间计入，"
    "销售额扣除该订单的退款，全额退款的订单不计。对照组为未参加本活动、会员等级与参加者相同（按当前等级）"
    "且活动结束时仍是会员的会员。增量销售额 =（参加者在活动期及其后 14 天的人均销售额 − 对照组同期人均销售额）"
    "× 参加人数；对照组为空时无法计算，显示“—”。积分成本 = 活动发放的积分 × 每积分价值（{fen} 分）。"
    "ROI = 增量销售额 ÷ 积分成本；成本为 0 时显示“—”。"
)
CAMPAIGN_COMPARE_COLUMNS = {
    "title": "活动", "code": "活动码", "days": "活动期", "participants": "参加人数", "cost": "积分成本",
    "incremental": "增量销售额", "roi": "ROI",
}

STAFF_TITLE = "员工"
STAFF_HINT = ("员工在公众号聊天中工作：社群运营和活动管理员发起和管理社群活动，客服处理工单，"
              "门店店员核销本店的券；增删员工会同步微信的员工标签（员工菜单）。")
STAFF_EMPTY = "还没有员工。"
STAFF_FIELDS = {"openid": "OpenID", "role": "角色", "store": "门店（仅店员）", "added_by": "添加人",
                "created_at": "添加时间"}
STAFF_ROLES = {"manager": "社群运营", "admin": "活动管理员", "service": "客服", "clerk": "门店店员"}
STAFF_NO_STORE = "—"
STAFF_STORE_UNKNOWN = "没有这个门店。"
STAFF_ADD = "添加员工"
STAFF_SET_ROLE = "修改角色"
STAFF_REMOVE = "移除"
STAFF_REMOVE_CONFIRM = "确定移除该员工吗？"
STAFF_DONE = {"added": "员工已添加。", "changed": "角色已修改。", "removed": "员工已移除。", "same": "角色未变。"}
STAFF_NOT_FOUND = "该 OpenID 不是员工。"
BACK = "返回列表"

# --- tickets (issue 18) -----------------------------------------------------------------------------
TICKETS_TITLE = "工单"
TICKET_TITLE = "工单 {code}"
TICKET_FIGURES_TITLE = "工单统计"
TICKET_FIELDS = {
    "code": "工单号", "created_at": "创建时间", "category": "类别", "kind": "类型", "state": "状态",
    "member": "会员", "assigned_to": "处理人", "answer_due_at": "首次答复期限", "resolve_due_at": "解决期限",
    "first_answer_at": "首次答复", "resolved_at": "解决时间", "order_id": "订单号", "rating": "评分",
    "escalated": "超时升级", "reopens": "重开次数",
}
TICKET_KINDS = {"ticket": "工单", "hand-off": "转人工", "survey": "调查回访"}
TICKET_STATES = {"open": "待处理", "answered": "已答复", "resolved": "已解决"}
TICKET_BREACHES = {"answer": "首次答复超时", "resolve": "解决超时"}
TICKET_SUPERVISOR = "差评重开 · 主管跟进"
TICKET_ANY = "全部"
TICKET_LATE_ONLY = "仅看超时"
TICKET_MINE = "分配给我"
TICKET_FILTER = "筛选"
TICKET_NONE = "没有符合条件的工单。"
TICKET_THREAD = "往来记录"
TICKET_AUTHORS = {"member": "会员", "staff": "客服", "system": "结案说明"}
TICKET_IMAGE = "图片"
TICKET_UNDELIVERED = "待会员下次发消息时送达"
TICKET_ANSWER = "回复会员"
TICKET_ANSWER_HINT = "回复内容（会员在 48 小时窗口内即时收到，否则在其下次发消息时收到）"
TICKET_RESOLVE = "标记为已解决"
TICKET_RESOLVE_HINT = "结案说明（可选，会一并发给会员，并请其评分）"
TICKET_ASSIGN = "分配"
TICKET_UNASSIGNED = "未分配"
TICKET_TEXT_INVALID = "回复内容不能为空，且不超过 4000 字。"
TICKET_ASSIGNEE_INVALID = "请选择一位在职的管理员或运营人员。"
TICKET_WAS_RESOLVED = "该工单已解决，不能再回复或结案。"
TICKET_DONE = {"answer": "已回复会员。", "resolve": "工单已解决，已请会员评分。", "assign": "处理人已更新。"}
TICKET_AUDIT = "操作记录"
TICKET_NO_AUDIT = "暂无操作记录。"
TICKET_BACK = "返回工单列表"
TICKET_MEMBER_SECTION = "工单"
TICKET_MEMBER_NONE = "该会员没有工单。"
TICKET_FIG_RANGE = "统计区间（按创建日期）"
TICKET_FIG_TOTAL = "工单总数"
TICKET_FIG_FIRST = "首次答复用时（小时）"
TICKET_FIG_RESOLVE = "解决用时（小时）"
TICKET_FIG_MEDIAN, TICKET_FIG_P90, TICKET_FIG_COUNT = "中位数", "P90", "数量"
TICKET_FIG_SLA_ANSWER = "首次答复达标率"
TICKET_FIG_SLA_RESOLVE = "解决达标率"
TICKET_FIG_ESCALATED = "超时升级"
TICKET_FIG_RATINGS = "评分分布"
TICKET_FIG_MEAN = "平均评分"
TICKET_FIG_NONE = "—"
TICKET_BAD_DATE = "日期格式应为 YYYY-MM-DD。"
TICKET_ANNOUNCE = {
    "new": "【新工单】{code}（{category}）\n请在聊天中回复【工单】处理，或打开控制台 {path}",
    "reopened": "【差评重开】{code}（{category}）会员评分较低，请主管跟进：{path}",
    "sla_answer": "【超时提醒】{code}（{category}）已超过首次答复时限：{path}",
    "sla_resolve": "【超时提醒】{code}（{category}）已超过解决时限：{path}",
}

# --- dashboard (issue 15) ------------------------------------------------------------------------------
DASHBOARD_TITLE = "运营数据看板"
DASHBOARD_AS_OF = "数据截至 {day}（每日凌晨生成快照）"
DASHBOARD_EMPTY = "还没有数据快照。快照每天 00:30 生成；也可运行 `wxbot jobs run kpi_snapshot` 立即生成。"
DASHBOARD_RANGE = "时间范围"
DASHBOARD_BAD_RANGE = "时间范围 days={days} 无效：只能是 7、30、90 或 365 天。"
DASHBOARD_RANGES = {7: "近 7 天", 30: "近 30 天", 90: "近 90 天", 365: "近一年"}
DASHBOARD_CHANGE = "较 {days} 天前 {delta}"
DASHBOARD_NO_CHANGE = "较 {days} 天前：无对比数据"
DASHBOARD_TARGET = "目标"
DASHBOARD_TABLE = "表格视图"
DASHBOARD_DAY = "日期"
DASHBOARD_POINTS = "个百分点"
DASHBOARD_TOUCHES = "近 30 天营销触达次数分布（人数）"
DASHBOARD_UNDELIVERABLE = "当日无法送达的推送（按原因）"
DASHBOARD_NONE = "无"
DASHBOARD_DEMO = "演示数据：以下数字由 `wxbot demo` 生成的模拟会员活动计算得出。"
DIMENSION_NAMES = {"growth": "增长", "spending": "消费", "value": "积分价值", "experience": "会员体验"}
KPI_LABELS = {
    "followers": "关注用户数",
    "members": "会员数",
    "signups": "新增会员",
    "deletions": "注销会员",
    "net_growth": "净增长",
    "referral_share_30d": "推荐注册占比（30 天）",
    "yoy_growth": "会员数同比增长",
    "orders": "会员支付订单",
    "sales_yuan": "会员销售额（元）",
    "aov_yuan": "客单价（元）",
    "repeat_rate_90d": "复购率（90 天）",
    "top1_share_365d": "前 1% 会员销售占比（一年）",
    "points_issued": "发放积分",
    "points_redeemed": "兑换积分",
    "points_expired": "过期积分",
    "redemption_rate_12m": "积分兑换率（12 个月）",
    "coupon_use_rate_12m": "券核销率（12 个月）",
    "liability_points": "未兑积分负债",
    "liability_yuan": "积分负债（元）",
    "expiring_30d": "30 天内到期积分",
    "expiring_60d": "60 天内到期积分",
    "expiring_90d": "90 天内到期积分",
    "expiring_30d_yuan": "30 天内到期（元）",
    "expiring_60d_yuan": "60 天内到期（元）",
    "expiring_90d_yuan": "90 天内到期（元）",
    "active_members": "活跃会员（30 天）",
    "interactions_per_active": "活跃会员月互动天数",
    "touches_share_3_5": "月触达 3–5 次的会员占比",
    "touches_share_0": "月触达 0 次的会员占比",
    "touches_mean": "会员月均营销触达次数",
    "push_reach": "推送可达率",
    "push_conversion_7d": "推送 7 日转化率",
    "undeliverable": "无法送达的推送",
    "open_anomalies": "未处理异常",
    "checkin_participation": "签到参与率",
    "nps_30d": "NPS（30 天）",
    "nps_answers_30d": "NPS 回答数（30 天）",
    "tickets_30d": "新工单（30 天）",
    "tickets_answer_sla_share": "工单按时首次回复率（30 天）",
    "tickets_resolve_sla_share": "工单按时解决率（30 天）",
    "ticket_rating_30d": "工单平均评分（30 天）",
}
# --- Stores (issue 17) -------------------------------------------------------------------------
TICKET_ERASED = "（会员已注销，留言已删除）"

STORES_TITLE = "门店"
STORES_HINT = "每家门店有自己的接口凭证（核销接口 POST /api/store/coupons/{code}/use）。凭证只在创建或轮换时显示一次。"
STORES_EMPTY = "还没有门店。"
STORES_FIELDS = {"code": "门店编码", "name": "名称", "city": "城市", "active": "状态", "secret_set_at": "凭证更新时间"}
STORES_ACTIVE = {True: "营业中", False: "已停用"}
STORES_ADD = "添加门店"
STORES_ROTATE = "轮换凭证"
STORES_ROTATE_CONFIRM = "轮换后旧凭证立即失效，确定吗？"
STORES_REVOKE = "吊销凭证"
STORES_REVOKE_CONFIRM = "吊销后该门店无法调用接口，直到再次轮换。确定吗？"
STORES_DISABLE, STORES_ENABLE = "停用", "启用"
STORES_NO_CREDENTIAL = "无凭证"
STORES_SECRET = "门店 {code} 的接口凭证（只显示这一次，请立即保存）："
STORES_SECRET_HEADER = "请求头：Authorization: Bearer {bearer}"
STORES_DONE = {"revoked": "凭证已吊销。", "disabled": "门店已停用。", "enabled": "门店已启用。"}
STORES_CODE_TAKEN = "该门店编码已存在。"
STORES_CODE_INVALID = "门店编码只能包含大写字母、数字、- 或 _，最长 32 位。"
STORES_NAME_REQUIRED = "请填写门店名称（最长 60 字）。"
STORES_CITY_INVALID = "城市最长 40 字。"
STORES_NOT_FOUND = "没有这家门店。"

# --- satisfaction surveys (issue 18) ---------------------------------------------------------------
SURVEYS_TITLE = "满意度调查"
SURVEYS_HINT = ("调查只在会员下一次主动发消息时随回复一起提问（触发后 7 天内有效，每位会员 90 天内最多一次），"
                "不占用推送。")
SURVEY_TITLE = "满意度调查：{name}"
SURVEY_NEW = "新建调查"
SURVEY_CREATE = "创建"
SURVEY_FIELDS = {
    "name": "名称", "kind": "类型", "question": "问题（CSAT）", "followup": "追问（可选）", "touchpoint": "触发点",
    "sample_percent": "每周抽样比例（%）", "thanks_points": "感谢积分（可选）", "status": "状态",
    "created_at": "创建时间", "answers": "回答数", "nps": "NPS", "csat_mean": "CSAT 平均分",
    "csat_top": "4-5 分占比", "promoters": "推荐者（9-10）", "passives": "中立者（7-8）",
    "detractors": "贬损者", "asked": "已提问",
}
SURVEY_KINDS = {"nps": "NPS（0-10 推荐意愿）", "csat": "CSAT（1-5 满意度）"}
SURVEY_TOUCHPOINTS = {
    "coupon": "门店核销优惠券", "order": "支付订单", "campaign": "活动结算", "ticket": "工单解决",
    "sample": "每周随机抽样活跃会员",
}
SURVEY_STATUS = {"active": "进行中", "paused": "已暂停"}
SURVEY_ASK_STATES = {
    "pending": "待提问", "asked": "已提问未答", "answered": "已回答", "declined": "已谢绝", "dropped": "未作答",
    "skipped": "已跳过（90 天内已调查）", "expired": "已过期（7 天内未发消息）",
}
SURVEY_NPS_FIXED = "NPS 问题固定为：{question}"
SURVEY_PAUSE, SURVEY_RESUME = "暂停", "恢复"
SURVEY_DONE = {"created": "调查已创建。", "paused": "调查已暂停。", "resumed": "调查已恢复。"}
SURVEY_NAME_INVALID = "请填写名称，不超过 40 字。"
SURVEY_KIND_INVALID = "请选择 NPS 或 CSAT。"
SURVEY_QUESTION_INVALID = "CSAT 调查请填写问题，不超过 200 字。"
SURVEY_FOLLOWUP_INVALID = "追问不超过 200 字。"
SURVEY_TOUCHPOINT_INVALID = "请选择触发点。"
SURVEY_SAMPLE_INVALID = "抽样比例请填写 1-100 的整数。"
SURVEY_THANKS_INVALID = "感谢积分请填写 0-{high} 的整数。"
SURVEYS_EMPTY = "还没有满意度调查。"
SURVEY_NONE = "暂无"
SURVEY_SUMMARY = "按触发点汇总"
SURVEY_BY_REWARD = "按奖品（券核销触发）"
SURVEY_BY_CAMPAIGN = "按活动"
SURVEY_STATES_TITLE = "提问情况"
SURVEY_BACK = "返回调查列表"
SURVEY_MEMBER_SECTION = "满意度调查"
SURVEY_MEMBER_NONE = "该会员没有回答过调查。"
SURVEY_SCORE = "评分"

# --- Push report (issue 15 item 5) ----------------------------------------------------------------
PUSH_REPORT_TITLE = "推送报告"
PUSH_REPORT_TAB = "推送报告（按月、按类型）"
PUSH_LIST_TAB = "推送记录"
PUSH_REPORT_HINT = ("每条推送计入其创建（排队）时的本地月份。已送达按渠道统计；因月度上限等待或被放弃的计入“月度上限”；"
                    "7 日转化：送达后 7 天内会员签到、兑换或下单。最近 7 天内送达的推送，转化还在统计中。")
PUSH_REPORT_FROM = "起始月份"
PUSH_REPORT_TO = "截止月份（含）"
PUSH_REPORT_SHOW = "查看"
PUSH_REPORT_BAD_MONTH = "月份格式应为 YYYY-MM。"
PUSH_REPORT_ORDER = "起始月份不能晚于截止月份。"
PUSH_REPORT_TOO_LONG = "时间范围最长 24 个月。"
PUSH_REPORT_EMPTY = "所选月份没有推送。"
PUSH_REPORT_COLUMNS = {
    "month": "月份", "kind": "类型", "queued": "排队", "sent_total": "已送达", "undeliverable": "无法送达",
    "held_by_cap": "月度上限", "converted_7d": "7 日转化", "conversion_7d": "转化率",
}
PUSH_REPORT_REASONS = "无法送达原因"
PUSH_REPORT_CHART = "各类型每月送达与转化"
# The push kinds operators see; a kind missing here is shown by its code.
PUSH_KIND_NAMES = {
    "birthday": "生日祝福", "expiry": "积分到期提醒", "winback": "回归召回", "campaign": "活动推送",
    "campaign_reward": "活动奖励通知", "points_adjusted": "积分调整通知", "ticket_answer": "工单答复",
    "ticket_resolved": "工单解决通知", "ticket_staff": "新工单通知（员工）", "reply": "超时回复", "broadcast": "群发",
    "coupon_granted": "赠券通知", "tier_gift": "升级礼通知", "coupon_lapse": "优惠券到期提醒",
    "winback_warn": "回归提醒", "winback_coupon": "回归券", "draw_coupon": "抽奖奖品（券）",
    "draw_fallback": "抽奖补偿积分", "draw_unpaid": "抽奖奖品待补发",
}
PUSH_CHANNEL_NAMES = {"cs": "客服消息", "template": "模板消息", "subscribe": "订阅消息", "robot": "企业微信群机器人"}
PUSH_CAUSE_NAMES = {
    "no_channel": "没有可用渠道（48 小时客服窗口外、无模板、无订阅额度）",
    "refused": "各渠道均被微信拒绝",
    "not_user": "openid 不属于本公众号",
    "template_delivery": "模板消息投递失败（如用户拒收）",
    "other": "其他原因",
}

# --- channel QR codes and the sharing funnel (渠道码与分享) -----------------------------------------------
SHARING_TITLE = "渠道码与分享"
SHARING_HINT = "渠道码是永久二维码（场景值 chan_名称），用于门店、海报等；关注或扫码的人会记下首个渠道。"
CHANNELS_TITLE = "渠道码"
CHANNELS_EMPTY = "还没有渠道码。"
CHANNEL_FIELDS = {"name": "名称", "label": "说明", "scene": "场景值", "qr": "二维码", "created_at": "创建时间"}
CHANNEL_ADD = "新建渠道码"
CHANNEL_NAME_INVALID = "名称只能包含小写字母、数字、- 或 _，以字母或数字开头，最长 32 位。"
CHANNEL_LABEL_REQUIRED = "请填写说明（最长 60 字）。"
CHANNEL_NAME_TAKEN = "该渠道码名称已存在。"
CHANNEL_CREATED = "渠道码 {name} 已创建。"
CHANNEL_QR_DEMO = "（演示模式：二维码为占位链接）"
CHANNEL_QR_FAILED = "二维码暂时生成失败"
FUNNEL_TITLE = "分享漏斗"
FUNNEL_HINT = "扫码、关注按人数去重；注册为由该邀请人（或首个渠道）带来的会员；首单为其中已有有效消费订单的会员。"
FUNNEL_SHARERS = "按邀请人（邀请码）"
FUNNEL_CHANNELS = "按渠道码"
FUNNEL_FIELDS = {"sharer": "邀请码", "channel": "渠道", "scans": "扫码", "follows": "关注", "signups": "注册",
                 "first_orders": "首单"}
FUNNEL_EMPTY = "暂无数据。"
TOP_SHARERS_TITLE = "各活动邀请最多的会员"
TOP_SHARERS_FIELDS = {"campaign": "活动", "sharer": "邀请码", "joins": "带来参加人数"}
REFERRAL_SHARE = "近 30 天注册 {signups} 人，其中经推荐 {referred} 人，推荐注册占比 {share}。"


# --- experiments (A/B tests over a push kind or a broadcast) --------------------------------------------
EXPERIMENTS_TITLE = "实验"
EXPERIMENTS_HINT = ("对生日祝福、回归礼或群发做 A/B 实验：第一组为对照组；留出组不发送任何推送，但同样统计效果。"
                    "每位会员按（实验，会员）的哈希固定分组，实验不会增加任何推送。")
EXPERIMENTS_EMPTY = "还没有实验。"
EXPERIMENT_NEW = "新建实验"
EXPERIMENT_CREATE = "开始实验"
EXPERIMENT_STOP = "停止实验"
EXPERIMENT_DONE = {"created": "实验已开始。", "stopped": "实验已停止，分组与报告保留。"}
EXPERIMENT_TARGETS = {"birthday": "生日祝福", "winback": "回归礼", "broadcast": "群发"}
EXPERIMENT_STATUS = {"running": "进行中", "stopped": "已停止"}
EXPERIMENT_FIELDS = {
    "name": "名称", "target": "实验对象", "holdout": "留出比例（%）", "status": "状态", "arms": "分组",
    "created_at": "开始时间", "arm_name": "组名", "arm_weight": "权重",
    "arm_text": "文案（可用 {points}、{balance}、{brand}）", "arm_hour": "发送时刻（9–20 点）",
    "arm_points": "回归礼积分",
    "assigned": "人数", "needed": "读出 5 个百分点还需人数",
}
EXPERIMENT_ARM = "第 {n} 组"
EXPERIMENT_ARM_HINT = "第 1 组为对照组；权重之和须为 100；不需要的组留空。"
EXPERIMENT_ERRORS = {
    "name": "名称为 1 到 60 个字。", "target": "请选择实验对象；同一推送类型同时只能有一个进行中的实验。",
    "holdout": "留出比例为 0 到 50 的整数。", "arms": "至少两组，最多五组，权重之和须为 100。",
    "arm_name": "组名为 1 到 16 个字，不能重名，也不能叫 holdout。", "arm_weight": "权重为大于 0 的整数。",
    "arm_text": "文案为 1 到 300 个字，只能填 {points}、{balance}、{brand}。",
    "arm_hour": "发送时刻为 9 到 20 的整数。",
    "arm_points": "回归礼积分为 1 到 1000 的整数。", "arm_params": "该实验对象不能设置这一项。",
    "request_id": "请求编号无效，请刷新页面后重试。",
}
EXPERIMENT_OUTCOMES = {
    "delivered": "送达", "interacted": "48 小时内互动", "checked_in": "7 天内签到", "redeemed": "7 天内兑换",
    "ordered": "7 天内下单", "opted_out": "退订营销",
}
EXPERIMENT_HOLDOUT = "留出组（不发送）"
EXPERIMENT_REPORT = "各组效果"
EXPERIMENT_REPORT_HINT = ("比率后为 95% Wilson 置信区间；差值为与对照组相比的百分点。各组从分组时刻起计："
                          "互动按本地日历日计，覆盖分组当天及其后两天；签到、兑换（积分兑换，不含赠券）"
                          "与下单（扣除退款后仍有金额）计分组后 7 天内；退订为目前已退订营销者。"
                          "所需人数按对照组的互动率、双侧 5% 显著性、80% 把握度计算。")


# --- segments (the daily RFM layering) ---------------------------------------------------------------------
SEGMENTS_TITLE = "会员分层"
SEGMENTS_HINT = ("每天 00:20 按已支付订单（扣除退款）为会员分层：R 为最近一次下单距今、F 为近 12 个月订单数、"
                 "M 为近 12 个月实付金额，各按有订单会员的五分位（会员较少时按规则文件 [rfm] 的固定分界）打 1–5 分。"
                 "高价值：R、F、M 均 ≥ 4；潜力价值：R ≥ 4 且 F ≤ 2；流失风险：R ≤ 2 且 F ≥ 2；"
                 "其余为中价值；从未下单为未消费。")
SEGMENTS_FIELDS = {"name": "分层", "members": "会员数", "sales": "近 12 个月实付", "share": "销售占比",
                   "since": "从", "until": "到"}
SEGMENTS_FLOWS = "分层流转"
SEGMENTS_FLOWS_HINT = ("所选日期内会员在分层之间的移动（行：原分层，列：新分层；“首次分层”为第一次分层的会员）。"
                       "共 {n} 人次。")
SEGMENTS_FIRST = "首次分层"
SEGMENTS_BAD_RANGE = "开始日期须不晚于结束日期，且最多 {days} 天。"
SEGMENTS_SHOW = "查看"
F_SEGMENT = "会员分层"
SEGMENT_SINCE = "{segment}（自 {day} 起）"


# --- broadcasts (a message to an audience, through the push policy) --------------------------------------
BROADCASTS_TITLE = "群发"
BROADCASTS_HINT = ("向一群会员发送一条营销消息：先预览人数、各渠道可触达人数与月度上限的影响，再确认发送。"
                   "发送仍遵守每月营销上限、免打扰时段与退订；已沉睡的会员不在人群中。")
BROADCASTS_EMPTY = "还没有群发。"
BROADCAST_NEW = "新建群发"
BROADCAST_PREVIEW = "预览"
BROADCAST_SEND = "确认发送"
BROADCAST_CANCEL = "取消群发"
BROADCAST_CANCEL_HINT = "取消后未发出的消息全部作废，已发出的不受影响。"
BROADCAST_IN_PUSHES = "在推送中查看这次群发的消息"
PUSHES_OF_BROADCAST = "只显示群发 #{id} 的消息。"
BROADCAST_DONE = {"created": "群发已创建，将按发送时间由推送进程分批发出。",
                  "cancelled": "群发已取消，未发出的消息已作废。"}
BROADCAST_KINDS = {"campaign": "活动", "holiday": "节日", "content": "内容"}
BROADCAST_STATUS = {"scheduled": "待发送", "sending": "发送中", "sent": "已排队完毕", "cancelled": "已取消"}
BROADCAST_CONTENT_TYPES = {"text": "文字", "article": "图文"}
BROADCAST_FIELDS = {
    "name": "名称", "kind": "类型", "status": "状态", "send_at": "发送时间", "deadline": "截止时间",
    "audience": "人群", "tiers": "等级", "segments": "会员分层", "campaign": "活动码（该活动的参与者）",
    "list_id": "上传名单", "active_days": "最近 N 天内互动过", "content_type": "内容形式", "text": "文字内容",
    "title": "图文标题", "description": "图文摘要", "picurl": "图片链接", "url": "跳转链接",
    "experiment_id": "实验（可选）", "queued": "已排队", "held_out": "留出组", "created_by": "创建人",
    "created_at": "创建时间", "rows": "消息状态",
}
BROADCAST_SEND_AT_HINT = "本地时间，留空为立即发送；截止时间之后仍未发出的消息作废。"
BROADCAST_ANY = "不限"
BROADCAST_NO_EXPERIMENT = "不做实验"
BROADCAST_NO_LIST = "不用名单"
BROADCAST_PREVIEW_TITLE = "预览"
BROADCAST_PREVIEW_FIGURES = {
    "audience": "人群人数", "reachable": "预计可发送", "capped": "本月已达上限（不会收到）",
    "cs_window": "48 小时内互动过（客服消息可达）", "template": "可用模板消息", "subscription": "有小程序订阅额度",
}
BROADCAST_CAP = "发送当天每月营销上限为 {cap} 条。"
BROADCAST_ESTIMATE = "约 {n}（±{margin}）"
BROADCAST_ESTIMATE_NOTE = "人群较大，“已达上限”按抽样的 {sample} 人估算（95% 置信区间）；人群人数和各渠道人数为精确值。"
BROADCAST_QUIET = "发送时间在免打扰时段内，将于 {at} 开始发送。"
BROADCAST_STARTS = "将于 {at} 开始发送。"
BROADCAST_SAMPLE = "会员收到的消息："
BROADCAST_ERRORS = {
    "name": "名称为 1 到 60 个字。", "kind": "请选择类型。", "audience": "没有会员符合这个人群，请放宽条件。",
    "tiers": "请选择已有的等级。", "segments": "请选择已有的分层。", "campaign": "没有这个活动码。",
    "list_id": "没有这个名单。", "active_days": "天数为 1 到 3650 的整数。",
    "content": "请填写文字内容，或图文标题。", "text": "文字内容为 1 到 600 个字。",
    "title": "图文标题为 1 到 64 个字。", "description": "图文摘要最多 120 个字。",
    "picurl": "请填写 http 或 https 开头的图片链接。", "url": "请填写 http 或 https 开头的跳转链接。",
    "send_at": "发送时间不能早于现在，格式为 年-月-日 时:分。",
    "deadline": "截止时间须晚于发送时间，格式为 年-月-日 时:分。",
    "experiment_id": "请选择进行中的群发实验。", "request_id": "请求编号无效，请刷新页面后重试。",
}
LIST_UPLOAD = "上传会员名单"
LIST_UPLOAD_HINT = "每行一个公众号或小程序 openid；最多 100,000 个。上传后可在人群中选用。"
LIST_FIELDS = {"name": "名单名称", "openids": "openid（每行一个）"}
LIST_DONE = "名单「{name}」已上传：找到 {size} 位会员，{unknown} 个 openid 没有对应会员。"
LIST_ERRORS = {"name": "名单名称为 1 到 60 个字。",
               "openids": "没有找到任何会员，请检查 openid（每行一个，最多 100,000 个）。"}
LIST_LABEL = "{name}（{size} 人）"


# --- win-back (the staged churn programme) ----------------------------------------------------------------
WINBACK_TITLE = "流失预警"
WINBACK_HINT = ("会员距上次下单超过自己平均下单间隔的两倍（只下过一单为 60 天），"
                "或月度互动减少一半以上，即进入流失预警。"
                "此后每 7 天一步：提醒、回归礼积分、回归礼券、沉睡（不再营销，直到会员再次发消息）。")
WINBACK_STAGES = {"warn": "提醒", "recall1": "回归礼（积分）", "recall2": "回归礼（券）", "dormant": "沉睡"}
WINBACK_FIELDS = {
    "stage": "阶段", "now": "当前人数", "reached": "期间进入", "recalled": "7 天内回访", "reactivated": "30 天内下单",
    "recall_rate": "回访率", "reactivation_rate": "复购率", "member": "会员", "tier": "等级", "segment": "分层",
    "since": "进入时间", "last_interaction": "最近互动", "since_day": "从", "until_day": "到",
}
WINBACK_MEMBERS = "当前在流失预警中的会员"
WINBACK_NONE = "目前没有会员处于流失预警。"
WINBACK_REPORT = "各阶段效果"
WINBACK_REPORT_HINT = "所选日期内进入各阶段的会员（实验留出组除外），及其 7 天内回访、30 天内下单的人数。"
WINBACK_BAD_RANGE = "开始日期须不晚于结束日期，且最多 {days} 天。"


# --- a coupon to an audience (人群赠券) ----------------------------------------------------------------------
AUDIENCE_GRANT_TITLE = "人群赠券"
AUDIENCE_GRANT_HINT = ("向一群会员各赠送一张券：不扣积分，计入库存与限领数量，库存用完即停；"
                       "每位会员会收到通知。一次最多 {limit} 位会员；重复提交不会重复赠送。")
AUDIENCE_GRANT_SIZE = "人群人数"
AUDIENCE_GRANT_REMAINING = "剩余库存"
AUDIENCE_GRANT_UNLIMITED = "不限"
AUDIENCE_GRANT_DONE = "已赠送 {granted} 张（人群 {size} 人；此前已赠 {repeated} 人，超过每人限领 {over_limit} 人）。"
AUDIENCE_GRANT_STOPPED = "库存已用完，其余会员未获赠。"
AUDIENCE_GRANT_TOO_LARGE = "人群有 {size} 人，一次最多赠送 {limit} 人，请缩小人群。"
