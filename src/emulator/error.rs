//! ECR's exceptions as the emulator raises them: the `__type`, the message, the extra members and
//! the HTTP status of each. Rendering to the AWS JSON 1.1 error body happens only here.
//! This module must not know about HTTP servers or storage.

use serde_json::{json, Map, Value};

/// One ECR exception (or AWS common error) with everything its wire form needs.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum EcrError {
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    RepositoryNotFound(String),
    #[error("{0}")]
    RepositoryAlreadyExists(String),
    #[error("{0}")]
    RepositoryNotEmpty(String),
    #[error("{message}")]
    InvalidLayerPart {
        message: String,
        registry_id: String,
        repository_name: String,
        upload_id: String,
        last_valid_byte_received: Option<u64>,
    },
    #[error("{0}")]
    UploadNotFound(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    InvalidLayer(String),
    #[error("{0}")]
    LayerPartTooSmall(String),
    #[error("{0}")]
    LayerAlreadyExists(String),
    #[error("{0}")]
    EmptyUpload(String),
    #[error("{0}")]
    LayersNotFound(String),
    #[error("{0}")]
    LayerInaccessible(String),
    #[error("{0}")]
    ImageAlreadyExists(String),
    #[error("{0}")]
    ImageTagAlreadyExists(String),
    #[error("{0}")]
    ImageDigestDoesNotMatch(String),
    #[error("{0}")]
    ReferencedImagesNotFound(String),
    #[error("{0}")]
    ImageNotFound(String),
    #[error("{0}")]
    TooManyTags(String),
    #[error("{0}")]
    InvalidTagParameter(String),
    #[error("{0}")]
    Throttling(String),
    #[error("{0}")]
    Server(String),
    /// AWS's answer to an `X-Amz-Target` it does not know.
    #[error("{0}")]
    UnknownOperation(String),
    /// A body that is not the JSON object the protocol requires.
    #[error("{0}")]
    Serialization(String),
    /// SigV4 failures: (code, message).
    #[error("{1}")]
    Auth(&'static str, String),
}

impl EcrError {
    /// The `__type` member: the exception's shape name.
    pub fn code(&self) -> &'static str {
        use EcrError::*;
        match self {
            InvalidParameter(_) => "InvalidParameterException",
            RepositoryNotFound(_) => "RepositoryNotFoundException",
            RepositoryAlreadyExists(_) => "RepositoryAlreadyExistsException",
            RepositoryNotEmpty(_) => "RepositoryNotEmptyException",
            InvalidLayerPart { .. } => "InvalidLayerPartException",
            UploadNotFound(_) => "UploadNotFoundException",
            LimitExceeded(_) => "LimitExceededException",
            InvalidLayer(_) => "InvalidLayerException",
            LayerPartTooSmall(_) => "LayerPartTooSmallException",
            LayerAlreadyExists(_) => "LayerAlreadyExistsException",
            EmptyUpload(_) => "EmptyUploadException",
            LayersNotFound(_) => "LayersNotFoundException",
            LayerInaccessible(_) => "LayerInaccessibleException",
            ImageAlreadyExists(_) => "ImageAlreadyExistsException",
            ImageTagAlreadyExists(_) => "ImageTagAlreadyExistsException",
            ImageDigestDoesNotMatch(_) => "ImageDigestDoesNotMatchException",
            ReferencedImagesNotFound(_) => "ReferencedImagesNotFoundException",
            ImageNotFound(_) => "ImageNotFoundException",
            TooManyTags(_) => "TooManyTagsException",
            InvalidTagParameter(_) => "InvalidTagParameterException",
            Throttling(_) => "ThrottlingException",
            Server(_) => "ServerException",
            UnknownOperation(_) => "UnknownOperationException",
            Serialization(_) => "SerializationException",
            Auth(code, _) => code,
        }
    }

    /// The HTTP status: awsJson1_1 defaults (400 client, 500 server), 403 for signature failures.
    /// AccessDeniedException (a registry that is not ours), IncompleteSignature (a malformed
    /// Authorization header) and RequestExpired are 400, as AWS's common errors list them.
    pub fn status(&self) -> u16 {
        match self {
            EcrError::Server(_) => 500,
            EcrError::Auth(
                "AccessDeniedException" | "IncompleteSignatureException" | "RequestExpired",
                _,
            ) => 400,
            EcrError::Auth(..) => 403,
            _ => 400,
        }
    }

    /// The JSON error body: `__type`, `message`, and the exception's extra members.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("__type".into(), json!(self.code()));
        body.insert("message".into(), json!(self.to_string()));
        if let EcrError::InvalidLayerPart {
            registry_id,
            repository_name,
            upload_id,
            last_valid_byte_received,
            ..
        } = self
        {
            body.insert("registryId".into(), json!(registry_id));
            body.insert("repositoryName".into(), json!(repository_name));
            body.insert("uploadId".into(), json!(upload_id));
            if let Some(last) = last_valid_byte_received {
                body.insert("lastValidByteReceived".into(), json!(last));
            }
        }
        Value::Object(body)
    }

    /// `Invalid parameter at '<member>' failed to satisfy constraint: '<constraint>'`, ECR's template.
    pub fn invalid(member: &str, constraint: impl std::fmt::Display) -> Self {
        EcrError::InvalidParameter(format!(
            "Invalid parameter at '{member}' failed to satisfy constraint: '{constraint}'"
        ))
    }

    /// ECR's RepositoryNotFoundException text.
    pub fn repository_not_found(name: &str, account: &str) -> Self {
        EcrError::RepositoryNotFound(format!(
            "The repository with name '{name}' does not exist in the registry with id '{account}'"
        ))
    }
}

/// What every operation returns.
pub type EcrResult<T> = Result<T, EcrError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_layer_part_carries_its_members() {
        let e = EcrError::InvalidLayerPart {
            message: "bad".into(),
            registry_id: "123456789012".into(),
            repository_name: "r".into(),
            upload_id: "u".into(),
            last_valid_byte_received: Some(41),
        };
        let b = e.body();
        assert_eq!(b["__type"], "InvalidLayerPartException");
        assert_eq!(b["lastValidByteReceived"], 41);
        assert_eq!(b["uploadId"], "u");
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn server_exception_is_500_and_auth_is_403() {
        assert_eq!(EcrError::Server("x".into()).status(), 500);
        assert_eq!(
            EcrError::Auth("InvalidSignatureException", "x".into()).status(),
            403
        );
        assert_eq!(
            EcrError::invalid("imageTag", "x").to_string(),
            "Invalid parameter at 'imageTag' failed to satisfy constraint: 'x'"
        );
    }
}
