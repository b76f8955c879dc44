//! Repositories created on first push: when ECR says a repository does not exist and the
//! configuration allows the name, create it with the configured settings and try once more.

use super::App;
use crate::ecr::{EcrError, ErrorKind};
use std::future::Future;

/// Run `call`; if the repository is missing and may be created, create it and run `call` again.
pub async fn creating<T, F, Fut>(app: &App, repo: &str, call: F) -> Result<T, EcrError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, EcrError>>,
{
    match call().await {
        Err(e) if e.kind == ErrorKind::RepositoryNotFound && app.config.create.allows(repo) => {
            tracing::info!(repository = repo, "creating repository on first push");
            app.ecr
                .create_repository(repo, &app.config.create.settings)
                .await?;
            call().await
        }
        other => other,
    }
}
