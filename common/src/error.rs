//! The one error type. Every variant knows its HTTP status, a stable English code and the
//! simplified-Chinese message a user reads.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::codes::token::TokenError;
use crate::domain::nucleic::TubeKind;
use crate::domain::resident_id::ResidentIdError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no authenticated caller")]
    Unauthenticated,
    #[error("malformed request: {0}")]
    MalformedRequest(String),
    #[error("request body too large")]
    BodyTooLarge,
    #[error("invalid resident id: {}", .0.as_str())]
    InvalidResidentId(ResidentIdError),
    #[error("invalid name")]
    InvalidName,
    #[error("invalid relationship")]
    InvalidRelationship,
    #[error("consent not given")]
    ConsentRequired,
    #[error("age {0} not eligible")]
    AgeNotEligible(u32),
    #[error("relative already bound by this guardian")]
    AlreadyBound,
    #[error("guardian holds the maximum number of relatives")]
    GuardianLimitReached,
    #[error("relative has the maximum number of guardians")]
    RelativeLimitReached,
    #[error("idempotency key reused for a different request")]
    IdempotencyKeyReused,
    #[error("binding not found")]
    BindingNotFound,
    #[error("unbind not yet allowed")]
    UnbindTooEarly { available_at: DateTime<Utc> },
    #[error("binding already verified")]
    AlreadyVerified,
    #[error("verification not started or certify id mismatch")]
    VerificationNotStarted,
    #[error("pledge version outdated")]
    PledgeOutdated,
    #[error("face verification failed")]
    FaceVerificationFailed,
    #[error("too many face verification failures")]
    TooManyFaceAttempts { retry_at: DateTime<Utc> },
    #[error("face session queried too often")]
    TooManyFaceQueries,
    #[error("concurrent update, retry")]
    Conflict,
    #[error("caller lacks the scope this route needs")]
    Forbidden,
    #[error("binding not verified yet")]
    VerificationRequired,
    #[error("daily offline code limit reached")]
    OfflineCodeLimitReached,
    #[error("no valid offline code")]
    OfflineCodeNotFound,
    #[error("code rejected: {0}")]
    InvalidCode(TokenError),
    #[error("code revoked")]
    CodeRevoked,
    #[error("kin codes are not accepted for arrival declarations")]
    KinCodeNotForArrival,
    #[error("unknown scan purpose")]
    InvalidPurpose,
    #[error("batch too large")]
    BatchTooLarge { max_rows: usize },
    #[error("checkpoint caller has no site claim")]
    SiteNotAssigned,
    #[error("invalid tube id")]
    InvalidTubeId,
    #[error("invalid tube kind")]
    InvalidTubeKind,
    #[error("tube full")]
    TubeFull { capacity: u32 },
    #[error("tube kind differs from its first registration")]
    TubeKindMismatch { tube_kind: TubeKind },
    #[error("tube reported or past retention")]
    TubeClosed,
    #[error("tube opened at another testing site")]
    TubeAtAnotherSite,
    #[error("yellow or red code in a pooled tube")]
    PoolingNotAllowed,
    #[error("person already in this tube")]
    AlreadyInTube,
    #[error("invalid or tampered cursor")]
    InvalidCursor,
    #[error("face scan not finished")]
    FaceNotFinished,
    #[error("face session expired")]
    FaceSessionExpired,
    #[error("face provider answer failed its signature check")]
    FaceProviderUntrusted,
    #[error("dependency unavailable: {0}")]
    DependencyUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> u16 {
        use AppError::*;
        match self {
            Unauthenticated => 401,
            MalformedRequest(_)
            | BodyTooLarge
            | InvalidResidentId(_)
            | InvalidName
            | InvalidRelationship
            | ConsentRequired
            | InvalidPurpose
            | BatchTooLarge { .. }
            | InvalidTubeId
            | InvalidTubeKind
            | InvalidCursor => 400,
            Forbidden | SiteNotAssigned => 403,
            BindingNotFound | OfflineCodeNotFound => 404,
            AlreadyBound
            | GuardianLimitReached
            | RelativeLimitReached
            | UnbindTooEarly { .. }
            | AlreadyVerified
            | VerificationNotStarted
            | PledgeOutdated
            | Conflict
            | VerificationRequired
            | TubeFull { .. }
            | TubeKindMismatch { .. }
            | TubeClosed
            | TubeAtAnotherSite
            | PoolingNotAllowed
            | AlreadyInTube
            | FaceNotFinished
            | FaceSessionExpired => 409,
            AgeNotEligible(_)
            | IdempotencyKeyReused
            | FaceVerificationFailed
            | InvalidCode(_)
            | CodeRevoked
            | KinCodeNotForArrival => 422,
            TooManyFaceAttempts { .. } | TooManyFaceQueries | OfflineCodeLimitReached => 429,
            Internal(_) => 500,
            DependencyUnavailable(_) | FaceProviderUntrusted => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        use AppError::*;
        match self {
            Unauthenticated => "unauthenticated",
            MalformedRequest(_) => "malformed_request",
            BodyTooLarge => "body_too_large",
            InvalidResidentId(_) => "invalid_id_number",
            InvalidName => "invalid_name",
            InvalidRelationship => "invalid_relationship",
            ConsentRequired => "consent_required",
            AgeNotEligible(_) => "age_not_eligible",
            AlreadyBound => "already_bound",
            GuardianLimitReached => "guardian_limit_reached",
            RelativeLimitReached => "relative_limit_reached",
            IdempotencyKeyReused => "idempotency_key_reused",
            BindingNotFound => "binding_not_found",
            UnbindTooEarly { .. } => "unbind_too_early",
            AlreadyVerified => "already_verified",
            VerificationNotStarted => "verification_not_started",
            PledgeOutdated => "pledge_outdated",
            FaceVerificationFailed => "face_verification_failed",
            TooManyFaceAttempts { .. } => "too_many_face_attempts",
            TooManyFaceQueries => "too_many_face_queries",
            Conflict => "conflict",
            Forbidden => "forbidden",
            VerificationRequired => "verification_required",
            OfflineCodeLimitReached => "offline_code_limit_reached",
            OfflineCodeNotFound => "offline_code_not_found",
            InvalidCode(reason) => reason.code(),
            CodeRevoked => "code_revoked",
            KinCodeNotForArrival => "kin_code_not_for_arrival",
            InvalidPurpose => "invalid_purpose",
            BatchTooLarge { .. } => "batch_too_large",
            SiteNotAssigned => "site_not_assigned",
            InvalidTubeId => "invalid_tube_id",
            InvalidTubeKind => "invalid_tube_kind",
            TubeFull { .. } => "tube_full",
            TubeKindMismatch { .. } => "tube_kind_mismatch",
            TubeClosed => "tube_closed",
            TubeAtAnotherSite => "tube_at_another_site",
            PoolingNotAllowed => "pooling_not_allowed",
            AlreadyInTube => "already_in_tube",
            InvalidCursor => "invalid_cursor",
            FaceNotFinished => "face_not_finished",
            FaceSessionExpired => "face_session_expired",
            FaceProviderUntrusted => "face_provider_untrusted",
            DependencyUnavailable(_) => "service_unavailable",
            Internal(_) => "internal_error",
        }
    }

    pub fn message(&self) -> &'static str {
        use AppError::*;
        match self {
            Unauthenticated => "请先登录一码通",
            MalformedRequest(_) => "请求格式不正确",
            BodyTooLarge => "请求内容过大",
            InvalidResidentId(_) => "请输入正确的身份证",
            InvalidName => "请输入正确的姓名",
            InvalidRelationship => "请选择正确的亲属关系",
            ConsentRequired => "请先获得亲属授权并同意协议",
            AgeNotEligible(_) => "暂时只支持绑定16岁以下及60岁以上的亲属",
            AlreadyBound => "您已绑定该亲属,请勿重复绑定",
            GuardianLimitReached => "每位一码通用户最多可为8位家人申领亲属码",
            RelativeLimitReached => "该亲属已被3位用户绑定",
            IdempotencyKeyReused => "请求重复提交,请刷新后重试",
            BindingNotFound => "未找到该亲属码",
            UnbindTooEarly { .. } => "绑定亲属码成员24小时后,才能进行解绑操作",
            AlreadyVerified => "该亲属已完成认证",
            VerificationNotStarted => "请先开始认证",
            PledgeOutdated => "信息认证承诺已更新,请重新阅读并确认",
            FaceVerificationFailed => "人脸识别认证失败,请重新认证",
            TooManyFaceAttempts { .. } => "人脸识别失败次数过多,请1小时后再试",
            TooManyFaceQueries => "人脸识别结果查询次数过多,请重新开始认证",
            Conflict => "操作过于频繁,请稍后重试",
            Forbidden => "无权进行此操作",
            VerificationRequired => "请先完成亲属认证",
            OfflineCodeLimitReached => "今日离线码生成次数已达上限,请明天再试",
            OfflineCodeNotFound => "暂无有效的离线码,请重新生成",
            InvalidCode(TokenError::Expired) => "亲属码已过期,请刷新后重新出示",
            InvalidCode(_) => "无法识别的亲属码",
            CodeRevoked => "该亲属码已失效",
            KinCodeNotForArrival => "亲属码现阶段不适用于“一场两站”",
            InvalidPurpose => "请选择正确的扫码场景",
            BatchTooLarge { .. } => "单次提交的记录过多",
            SiteNotAssigned => "当前账号未关联采样点,无法登记样本",
            InvalidTubeId => "请扫描正确的试管条码",
            InvalidTubeKind => "请选择正确的采样方式",
            TubeFull { .. } => "该试管已满,请更换新试管",
            TubeKindMismatch { .. } => "采样方式与该试管首次登记时不一致",
            TubeClosed => "该试管已送检,不能继续登记",
            TubeAtAnotherSite => "该试管已在其他采样点使用,请更换新试管",
            PoolingNotAllowed => "红码、黄码人员须单人单管采样",
            AlreadyInTube => "该人员已登记在此试管中,请勿重复登记",
            InvalidCursor => "分页参数无效,请从第一页重新查询",
            FaceNotFinished => "请先在支付宝中完成人脸识别,再提交认证",
            FaceSessionExpired => "人脸识别已过期,请重新开始认证",
            FaceProviderUntrusted => "人脸识别服务暂时不可用,请稍后再试",
            DependencyUnavailable(_) => "系统繁忙,请稍后再试",
            Internal(_) => "系统异常,请稍后再试",
        }
    }

    /// `{"error":{"code","message",…details}}`. Causes of 5xx stay in the logs, not the body.
    pub fn body(&self) -> ErrorAnswer {
        let mut error = ErrorFields {
            code: self.code(),
            message: self.message(),
            ..ErrorFields::default()
        };
        match self {
            AppError::InvalidResidentId(reason) => error.reason = Some(*reason),
            AppError::UnbindTooEarly { available_at } => {
                error.unbind_available_at = Some(rfc3339(*available_at));
            }
            AppError::TooManyFaceAttempts { retry_at } => error.retry_at = Some(rfc3339(*retry_at)),
            AppError::BatchTooLarge { max_rows } => error.max_rows = Some(*max_rows),
            AppError::TubeFull { capacity } => error.capacity = Some(*capacity),
            AppError::TubeKindMismatch { tube_kind } => error.tube_kind = Some(*tube_kind),
            _ => {}
        }
        ErrorAnswer { error }
    }
}

/// What a refused request answers.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorAnswer {
    pub error: ErrorFields,
}

/// The error's code and message, and the machine-readable details of its kind (never
/// personal data).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ErrorFields {
    pub code: &'static str,
    pub message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ResidentIdError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unbind_available_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tube_kind: Option<TubeKind>,
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_code_message_and_details_but_not_causes() {
        let err = AppError::DependencyUnavailable("dispatch failure to 10.0.0.1".into());
        assert_eq!(err.status(), 503);
        let body = serde_json::to_string(&err.body()).unwrap();
        assert!(body.contains("service_unavailable") && body.contains("系统繁忙"));
        assert!(!body.contains("10.0.0.1"));

        let at = "2026-11-28T10:00:00Z".parse().unwrap();
        let body =
            serde_json::to_value(AppError::UnbindTooEarly { available_at: at }.body()).unwrap();
        assert_eq!(body["error"]["unbind_available_at"], "2026-11-28T10:00:00Z");
        assert_eq!(
            body["error"]["message"],
            "绑定亲属码成员24小时后,才能进行解绑操作"
        );
    }

    #[test]
    fn details_are_the_kinds_own_fields_and_nothing_else() {
        let body = |err: AppError| serde_json::to_value(err.body()).unwrap();
        assert_eq!(
            body(AppError::InvalidResidentId(
                ResidentIdError::WrongCheckCharacter
            )),
            serde_json::json!({"error": {
                "code": "invalid_id_number",
                "message": "请输入正确的身份证",
                "reason": "wrong_check_character",
            }})
        );
        assert_eq!(
            body(AppError::TubeKindMismatch {
                tube_kind: TubeKind::Pooled10
            }),
            serde_json::json!({"error": {
                "code": "tube_kind_mismatch",
                "message": "采样方式与该试管首次登记时不一致",
                "tube_kind": "pooled_10",
            }})
        );
        let retry_at = "2026-11-28T11:00:00.5Z".parse().unwrap();
        assert_eq!(
            body(AppError::TooManyFaceAttempts { retry_at })["error"]["retry_at"],
            "2026-11-28T11:00:00Z"
        );
        assert_eq!(
            body(AppError::BatchTooLarge { max_rows: 500 })["error"]["max_rows"],
            500
        );
        assert_eq!(
            body(AppError::TubeFull { capacity: 10 })["error"]["capacity"],
            10
        );
        assert_eq!(
            body(AppError::Conflict),
            serde_json::json!({"error": {"code": "conflict", "message": "操作过于频繁,请稍后重试"}})
        );
    }
}
