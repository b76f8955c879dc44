//! docker against the authenticating proxy: `docker login` (into a temporary `DOCKER_CONFIG`,
//! so nothing touches `~/.docker`), push and, after `docker rmi`, pull of an image built here
//! `FROM scratch`; pushing without login, as bob (pull only) or after a wrong password fails
//! with docker's own message and nothing reaches ECR.

use super::*;

/// A docker client with its own config directory (the credentials `docker login` stores),
/// removing the images it names when the test ends, passed or failed.
struct Docker {
    config: tempfile::TempDir,
    images: std::cell::RefCell<Vec<String>>,
}

impl Docker {
    fn new() -> Docker {
        Docker {
            config: tempfile::tempdir().expect("temporary directory"),
            images: Default::default(),
        }
    }

    /// `docker ARGS` with `stdin` written to it.
    async fn run_with(&self, args: &[&str], stdin: &str) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", self.config.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("docker runs");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        child.wait_with_output().await.expect("docker runs")
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, "").await
    }

    /// `docker login HOST -u USER --password-stdin`.
    async fn login(&self, host: &str, user: &str, password: &str) -> Output {
        self.run_with(
            &["login", host, "-u", user, "--password-stdin"],
            &format!("{password}\n"),
        )
        .await
    }

    /// Build `image` FROM scratch with one layer per file of `sizes` bytes, each starting with
    /// the image's name (so no layer is shared with another image in the engine).
    async fn build(&self, image: &str, sizes: &[usize]) {
        self.images.borrow_mut().push(image.to_string());
        let ctx = scratch_build_context(image, sizes, 700);
        let built = self
            .run(&["build", "-t", image, ctx.path().to_str().unwrap()])
            .await;
        assert!(built.status.success(), "docker build: {}", describe(&built));
        if let Some(id) = self.inspect(image, "{{.Id}}").await {
            self.images.borrow_mut().push(id);
        }
    }

    /// `docker image inspect --format FORMAT IMAGE`, trimmed; `None` when the engine lacks it.
    async fn inspect(&self, image: &str, format: &str) -> Option<String> {
        let out = self
            .run(&["image", "inspect", "--format", format, image])
            .await;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        for image in self.images.borrow().iter() {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "-f", image])
                .env("DOCKER_CONFIG", self.config.path())
                .output();
        }
    }
}

/// The digest of docker push's `TAG: digest: sha256:… size: N` line.
fn pushed_digest(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|line| {
        let rest = &line[line.find("digest: ")? + "digest: ".len()..];
        Some(rest.split_whitespace().next()?.to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_login_push_and_pull_as_alice() {
    if !tool_available("docker", "version") {
        return;
    }
    let Some(s) = stack_with(EXAMPLE, &[]).await else {
        return;
    };
    let repo = "team-a/app";
    let image = format!("{}/{repo}:v1", s.host());
    let docker = Docker::new();
    docker.build(&image, &[2048, 300 * 1024]).await;
    let id = docker.inspect(&image, "{{.Id}}").await.expect("built");
    let layers = docker
        .inspect(&image, "{{json .RootFS.Layers}}")
        .await
        .expect("built");

    let login = docker.login(&s.host(), "alice", "alice-pw").await;
    assert!(login.status.success(), "docker login: {}", describe(&login));
    assert!(
        printed(&login).contains("Login Succeeded"),
        "{}",
        describe(&login)
    );
    let config = std::fs::read_to_string(docker.config.path().join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert!(
        config["auths"][s.host()].is_object(),
        "the credentials are in DOCKER_CONFIG: {config}"
    );

    let pushed = docker.run(&["push", &image]).await;
    assert!(
        pushed.status.success(),
        "docker push: {}",
        describe(&pushed)
    );
    let d = pushed_digest(&String::from_utf8_lossy(&pushed.stdout))
        .unwrap_or_else(|| panic!("no digest line: {}", describe(&pushed)));
    assert_eq!(
        ecr_digest(&s, repo, "v1").await.as_deref(),
        Some(d.as_str())
    );
    assert_eq!(digest(&ecr_manifest(&s, repo, "v1").await), d);
    assert!(
        metric(&s, "ecr_proxy_auth_tokens_issued_total", "").await >= 1.0,
        "docker used the token flow"
    );

    // Gone from the engine, then pulled back with the stored credentials.
    let removed = docker.run(&["rmi", "-f", &image]).await;
    assert!(
        removed.status.success(),
        "docker rmi: {}",
        describe(&removed)
    );
    let _ = docker.run(&["rmi", "-f", &id]).await;
    assert_eq!(docker.inspect(&id, "{{.Id}}").await, None, "removed");
    let pulled = docker.run(&["pull", &image]).await;
    assert!(
        pulled.status.success(),
        "docker pull: {}",
        describe(&pulled)
    );
    assert!(
        String::from_utf8_lossy(&pulled.stdout).contains(&format!("Digest: {d}")),
        "{}",
        describe(&pulled)
    );
    assert_eq!(docker.inspect(&image, "{{.Id}}").await, Some(id));
    assert_eq!(
        docker.inspect(&image, "{{json .RootFS.Layers}}").await,
        Some(layers),
        "the same layers came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_push_without_login_as_bob_or_with_a_wrong_password_is_refused() {
    if !tool_available("docker", "version") {
        return;
    }
    let Some(s) = stack_with(EXAMPLE, &[]).await else {
        return;
    };
    let repo = "team-a/refused";
    let image = format!("{}/{repo}:v1", s.host());
    let docker = Docker::new();
    docker.build(&image, &[4096]).await;

    // No login: docker takes an anonymous token, which grants nothing here; its requests are
    // answered 401 (sign in), and docker says so.
    let anonymous = docker.run(&["push", &image]).await;
    assert!(!anonymous.status.success(), "{}", describe(&anonymous));
    let said = printed(&anonymous);
    assert!(
        said.contains("unauthorized") || said.contains("no basic auth credentials"),
        "{}",
        describe(&anonymous)
    );

    let wrong = docker.login(&s.host(), "alice", "not-her-password").await;
    assert!(!wrong.status.success(), "{}", describe(&wrong));
    assert!(
        printed(&wrong).contains("unauthorized"),
        "{}",
        describe(&wrong)
    );
    assert!(
        !docker.config.path().join("config.json").exists()
            || !std::fs::read_to_string(docker.config.path().join("config.json"))
                .unwrap()
                .contains(&s.host()),
        "a refused login stores nothing"
    );

    let bob = docker.login(&s.host(), "bob", "bob-pw").await;
    assert!(bob.status.success(), "docker login: {}", describe(&bob));
    let refused = docker.run(&["push", &image]).await;
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        printed(&refused).contains("denied: requested access to the resource is denied"),
        "{}",
        describe(&refused)
    );

    assert_eq!(ecr_image_count(&s, repo).await, 0, "nothing reached ECR");
    assert!(metric(&s, "ecr_proxy_auth_denials_total", "insufficient_scope").await >= 1.0);
    assert!(metric(&s, "ecr_proxy_auth_denials_total", "unauthenticated").await >= 1.0);
    assert!(metric(&s, "ecr_proxy_auth_denials_total", "bad_credentials").await >= 1.0);
}
