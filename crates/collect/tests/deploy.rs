//! deploy/ held to the real `collect`: every YAML file parses; every `collect` command line
//! of the compose file, the Kubernetes manifests and the Dockerfile uses flags the built
//! binary accepts and runs, with its files, against a real redis-server on 127.0.0.1; the
//! metric names and labels the autoscaler, the adapter, Prometheus and the README use are ones
//! a working collector serves; scrape ports and probes meet `--metrics-addr`; the autoscaler
//! targets the collectors; each Redis keeps its queue in an append-only file.
#![cfg(feature = "redis")]

mod common;
use common::{collect_binary, http_get};

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harvester_testbed::support::{Redis, ServerProcess, eventually, eventually_some, find_program};
use harvester_testbed::{FaultProxy, TargetServer, free_port};
use yaml_rust2::{Yaml, YamlLoader};

/// Longest wait for a collector to finish or to serve something.
const WITHIN: Duration = Duration::from_secs(120);
/// The pod name `$(POD_NAME)` stands for in a run here.
const POD_NAME: &str = "collector-5d8c7b9f4-x2x9q";
/// Flags whose value is a file the container reads.
const INPUT_FLAGS: [&str; 3] = ["--urls", "--proxies", "--extract-rules"];
/// Flags whose value is a file the container writes.
const OUTPUT_FLAGS: [&str; 2] = ["--out", "--report"];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `.yml` and `.yaml` file under deploy/, relative to it.
fn yaml_files() -> Vec<String> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml") {
                found.push(path);
            }
        }
    }
    let root = deploy_dir();
    let mut found = Vec::new();
    walk(&root, &mut found);
    let mut names: Vec<String> = found
        .iter()
        .map(|path| path.strip_prefix(&root).expect("under deploy/").to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The documents of deploy/`relative`.
fn load(relative: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(&deploy_dir().join(relative)))
        .unwrap_or_else(|e| panic!("deploy/{relative} is not valid YAML: {e}"))
}

fn text<'a>(node: &'a Yaml, what: &str) -> &'a str {
    node.as_str().unwrap_or_else(|| panic!("{what}: expected a string, found {node:?}"))
}

/// A list of strings, or `None` when the key is absent. Kubernetes refuses a number or a
/// boolean where it wants a string, so anything else fails: quote it.
fn string_list(node: &Yaml, what: &str) -> Option<Vec<String>> {
    match node {
        Yaml::BadValue | Yaml::Null => None,
        Yaml::Array(items) => Some(items.iter().map(|item| text(item, what).to_owned()).collect()),
        other => panic!("{what}: expected a list of strings, found {other:?}"),
    }
}

/// A mapping with its `<<` merge keys (compose's YAML anchors) applied.
fn merged(node: &Yaml) -> Yaml {
    let Some(hash) = node.as_hash() else { return node.clone() };
    let merge_key = Yaml::String("<<".to_owned());
    let mut out = hash.clone();
    out.remove(&merge_key);
    if let Some(base) = hash.get(&merge_key).and_then(Yaml::as_hash) {
        for (key, value) in base {
            if !out.contains_key(key) {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Yaml::Hash(out)
}

/// The compose file's services, merge keys applied, in file order.
fn compose_services() -> Vec<(String, Yaml)> {
    let docs = load("docker-compose.yml");
    let services = docs[0]["services"].as_hash().expect("docker-compose.yml has services");
    services.iter().map(|(name, service)| (text(name, "a service name").to_owned(), merged(service))).collect()
}

/// Every document of deploy/k8s/, with its file.
fn manifests() -> Vec<(String, Yaml)> {
    yaml_files()
        .into_iter()
        .filter(|file| file.starts_with("k8s/"))
        .flat_map(|file| load(&file).into_iter().map(move |doc| (file.clone(), doc)))
        .collect()
}

/// The manifest of `kind` named `name`.
fn manifest<'a>(docs: &'a [(String, Yaml)], kind: &str, name: &str) -> &'a Yaml {
    docs.iter()
        .map(|(_, doc)| doc)
        .find(|doc| doc["kind"].as_str() == Some(kind) && doc["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} named {name:?} in deploy/k8s"))
}

/// What the Dockerfile's image runs.
struct Image {
    text: String,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
}

fn image() -> Image {
    let text = read(&deploy_dir().join("Dockerfile"));
    let instruction = |name: &str| -> Vec<String> {
        let line = text
            .lines()
            .filter_map(|line| line.strip_prefix(name))
            .next_back()
            .unwrap_or_else(|| panic!("deploy/Dockerfile has no {name}"));
        serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("deploy/Dockerfile {name}{line}: not a JSON list of strings ({e})"))
    };
    let (entrypoint, cmd) = (instruction("ENTRYPOINT "), instruction("CMD "));
    Image { text, entrypoint, cmd }
}

/// One `collect` command line of deploy/, with what its container has.
#[derive(Clone)]
struct Invocation {
    /// Where it is written.
    origin: String,
    /// The arguments after `collect`, `--flag=value` split in two.
    args: Vec<String>,
    /// The Redis URL this deploy's Redis answers on.
    redis: String,
    /// The files the container has (mounted): path inside → contents.
    files: HashMap<String, String>,
    /// The directories it may write (volumes mounted read-write).
    writable: Vec<String>,
    /// Its HTTP probes: path and port.
    probes: Vec<(String, u16)>,
}

impl Invocation {
    fn new(origin: String, entrypoint: Vec<String>, args: Vec<String>, redis: &str) -> Invocation {
        assert_eq!(entrypoint, ["collect"], "{origin}: runs {entrypoint:?}, not collect");
        let args = args
            .into_iter()
            .flat_map(|arg| match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => vec![flag.to_owned(), value.to_owned()],
                _ => vec![arg],
            })
            .collect();
        Invocation {
            origin,
            args,
            redis: redis.to_owned(),
            files: HashMap::new(),
            writable: Vec::new(),
            probes: Vec::new(),
        }
    }

    /// `enqueue` or `export`; `None` for a collector.
    fn subcommand(&self) -> Option<&str> {
        self.args.first().map(String::as_str).filter(|arg| !arg.starts_with('-'))
    }

    fn value(&self, flag: &str) -> Option<&str> {
        self.args.iter().position(|arg| arg == flag).and_then(|at| self.args.get(at + 1)).map(String::as_str)
    }

    fn has(&self, flag: &str) -> bool {
        self.args.iter().any(|arg| arg == flag)
    }

    fn is_collector(&self) -> bool {
        self.subcommand().is_none() && self.has("--queue")
    }

    /// The port of `--metrics-addr`, which must listen on every interface: Prometheus and
    /// the probes come from outside the container.
    fn metrics_port(&self) -> Option<u16> {
        self.value("--metrics-addr").map(|addr| {
            let addr: SocketAddr =
                addr.parse().unwrap_or_else(|e| panic!("{}: --metrics-addr {addr}: {e}", self.origin));
            assert!(addr.ip().is_unspecified(), "{}: --metrics-addr {addr} is unreachable from outside", self.origin);
            addr.port()
        })
    }
}

/// The Redis URL of the compose file's Redis: the service running redis-server, on its
/// default port.
fn compose_redis_url(services: &[(String, Yaml)]) -> String {
    let (name, service) = services
        .iter()
        .find(|(_, service)| {
            string_list(&service["command"], "command").is_some_and(|c| c.first().is_some_and(|c| c == "redis-server"))
        })
        .expect("docker-compose.yml has a service running redis-server");
    let command = string_list(&service["command"], name).unwrap_or_default();
    assert!(!command.contains(&"--port".to_owned()), "compose's {name}: the test assumes the default port");
    format!("redis://{name}:6379")
}

/// The `collect` command lines of the compose file.
fn compose_invocations(image: &Image) -> Vec<Invocation> {
    let services = compose_services();
    let redis = compose_redis_url(&services);
    let built: BTreeSet<&str> = services
        .iter()
        .filter(|(_, service)| service["build"]["dockerfile"].as_str() == Some("deploy/Dockerfile"))
        .map(|(name, service)| text(&service["image"], name))
        .collect();
    assert!(!built.is_empty(), "a compose service builds deploy/Dockerfile");
    let mut found = Vec::new();
    for (name, service) in &services {
        if !service["image"].as_str().is_some_and(|image| built.contains(image)) {
            continue;
        }
        let origin = format!("docker-compose.yml service {name}");
        let entrypoint = string_list(&service["entrypoint"], &origin).unwrap_or_else(|| image.entrypoint.clone());
        let args = string_list(&service["command"], &origin).unwrap_or_else(|| image.cmd.clone());
        let mut invocation = Invocation::new(origin, entrypoint, args, &redis);
        for volume in string_list(&service["volumes"], name).unwrap_or_default() {
            let mut parts = volume.split(':');
            let (source, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default().to_owned());
            let read_only = parts.next() == Some("ro");
            if source.starts_with('.') {
                let path = deploy_dir().join(source);
                if path.is_file() {
                    invocation.files.insert(target, read(&path));
                }
            } else if !read_only {
                invocation.writable.push(target);
            }
        }
        found.push(invocation);
    }
    found
}

/// The Redis URL of the manifests' Redis: the Service in front of the pods running
/// redis-server.
fn k8s_redis_url(docs: &[(String, Yaml)]) -> String {
    let redis_pods = docs
        .iter()
        .map(|(_, doc)| doc)
        .find(|doc| {
            doc["spec"]["template"]["spec"]["containers"].as_vec().is_some_and(|containers| {
                containers.iter().any(|c| {
                    string_list(&c["command"], "command")
                        .is_some_and(|command| command.first().is_some_and(|c| c == "redis-server"))
                })
            })
        })
        .expect("a manifest runs redis-server");
    let labels = &redis_pods["spec"]["template"]["metadata"]["labels"];
    let service = docs
        .iter()
        .map(|(_, doc)| doc)
        .find(|doc| {
            doc["kind"].as_str() == Some("Service")
                && doc["spec"]["selector"]
                    .as_hash()
                    .is_some_and(|selector| selector.iter().all(|(key, value)| labels[text(key, "label")] == *value))
        })
        .expect("a Service selects the Redis pods");
    let port = service["spec"]["ports"][0]["port"].as_i64().expect("the Redis Service's port");
    format!("redis://{}:{port}", text(&service["metadata"]["name"], "Service name"))
}

/// The `collect` command lines of the manifests, `$(VAR)` resolved from each container's env.
fn k8s_invocations(image: &Image) -> Vec<Invocation> {
    let docs = manifests();
    let redis = k8s_redis_url(&docs);
    let mut found = Vec::new();
    for (file, doc) in &docs {
        let pod = &doc["spec"]["template"]["spec"];
        for container in pod["containers"].as_vec().into_iter().flatten() {
            if !text(&container["image"], file).contains("harvester-collect") {
                continue;
            }
            let origin = format!("{file} {} {}", text(&doc["kind"], file), text(&doc["metadata"]["name"], file));
            let args = string_list(&container["args"], &origin);
            let (entrypoint, args) = match string_list(&container["command"], &origin) {
                Some(command) => (command, args.unwrap_or_default()),
                None => (image.entrypoint.clone(), args.unwrap_or_else(|| image.cmd.clone())),
            };
            let env: HashMap<&str, String> = container["env"]
                .as_vec()
                .into_iter()
                .flatten()
                .map(|var| {
                    let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                        Some("metadata.name") => POD_NAME.to_owned(),
                        Some(other) => panic!("{origin}: env from {other} is not handled here"),
                        None => text(&var["value"], &origin).to_owned(),
                    };
                    (text(&var["name"], &origin), value)
                })
                .collect();
            let args = args
                .into_iter()
                .map(|arg| match arg.strip_prefix("$(").and_then(|rest| rest.strip_suffix(')')) {
                    Some(var) => env.get(var).cloned().unwrap_or_else(|| panic!("{origin}: $({var}) is not in env")),
                    None => arg,
                })
                .collect();
            let mut invocation = Invocation::new(origin.clone(), entrypoint, args, &redis);
            for mount in container["volumeMounts"].as_vec().into_iter().flatten() {
                let (name, path) = (text(&mount["name"], &origin), text(&mount["mountPath"], &origin));
                let volume = pod["volumes"]
                    .as_vec()
                    .into_iter()
                    .flatten()
                    .find(|volume| volume["name"].as_str() == Some(name))
                    .unwrap_or_else(|| panic!("{origin}: no volume {name}"));
                let contents = if let Some(secret) = volume["secret"]["secretName"].as_str() {
                    Some(&manifest(&docs, "Secret", secret)["stringData"])
                } else {
                    volume["configMap"]["name"].as_str().map(|map| &manifest(&docs, "ConfigMap", map)["data"])
                };
                match contents {
                    Some(contents) => {
                        let entries = contents.as_hash().unwrap_or_else(|| {
                            panic!("{origin}: volume {name}: no stringData (Secret) or data (ConfigMap) to read")
                        });
                        for (key, value) in entries {
                            let file = format!("{path}/{}", text(key, &origin));
                            invocation.files.insert(file, text(value, &origin).to_owned());
                        }
                    }
                    None if mount["readOnly"].as_bool() != Some(true) => invocation.writable.push(path.to_owned()),
                    None => {}
                }
            }
            for probe in ["livenessProbe", "readinessProbe"] {
                let get = &container[probe]["httpGet"];
                if get.is_badvalue() {
                    continue;
                }
                let port = match &get["port"] {
                    Yaml::Integer(port) => *port,
                    named => container["ports"]
                        .as_vec()
                        .into_iter()
                        .flatten()
                        .find(|port| port["name"] == *named)
                        .and_then(|port| port["containerPort"].as_i64())
                        .unwrap_or_else(|| panic!("{origin}: {probe}'s port {named:?} is not a container port")),
                };
                let port = u16::try_from(port).expect("a port");
                invocation.probes.push((text(&get["path"], &origin).to_owned(), port));
            }
            found.push(invocation);
        }
    }
    found
}

/// Every `collect` command line of deploy/: the compose file's, the manifests' and the
/// image's default.
fn invocations() -> Vec<Invocation> {
    let image = image();
    let mut all = compose_invocations(&image);
    all.extend(k8s_invocations(&image));
    let default = Invocation::new("deploy/Dockerfile".to_owned(), image.entrypoint.clone(), image.cmd.clone(), "");
    all.push(default);
    all
}

/// `collect [subcommand] --help`.
fn help(subcommand: Option<&str>) -> String {
    let output = Command::new(collect_binary()).args(subcommand).arg("--help").output().expect("collect runs");
    assert!(output.status.success(), "collect {subcommand:?} --help failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether `help` lists `word` as a word of its own (`--queue`, not `--queue-size`).
fn lists(help: &str, word: &str) -> bool {
    help.match_indices(word).any(|(at, _)| {
        let before = help[..at].chars().next_back();
        let after = help[at + word.len()..].chars().next();
        before.is_none_or(|c| c.is_whitespace() || c == ',')
            && after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    })
}

#[test]
fn every_yaml_file_in_deploy_parses_and_every_manifest_says_what_it_is() {
    let files = yaml_files();
    for expected in ["docker-compose.yml", "prometheus.yml", "k8s/kustomization.yaml"] {
        assert!(files.contains(&expected.to_owned()), "deploy/{expected} is missing: {files:?}");
    }
    for file in &files {
        let docs = load(file);
        assert!(!docs.is_empty(), "deploy/{file} is empty");
        if file.starts_with("k8s/") {
            for doc in &docs {
                text(&doc["apiVersion"], &format!("a document of deploy/{file}: apiVersion"));
                let kind = text(&doc["kind"], &format!("a document of deploy/{file}: kind"));
                if kind != "Kustomization" {
                    text(&doc["metadata"]["name"], &format!("a {kind} of deploy/{file}: metadata.name"));
                }
            }
        }
    }
    // What `kubectl apply -k` applies exists.
    let kustomization = &load("k8s/kustomization.yaml")[0];
    for resource in string_list(&kustomization["resources"], "resources").expect("kustomization resources") {
        assert!(deploy_dir().join("k8s").join(&resource).is_file(), "kustomization names {resource}, which is missing");
    }
    // The adapter's config is YAML inside YAML.
    let docs = manifests();
    let adapter = adapter_config(&docs);
    assert!(adapter["externalRules"].as_vec().is_some_and(|rules| !rules.is_empty()));
}

#[test]
fn every_collect_command_line_uses_only_flags_the_binary_accepts() {
    let all = invocations();
    let top = help(None);
    for invocation in &all {
        let subcommand = invocation.subcommand();
        if let Some(subcommand) = subcommand {
            assert!(lists(&top, subcommand), "{}: `collect {subcommand}` is not a command", invocation.origin);
        }
        let accepted = help(subcommand);
        for flag in invocation.args.iter().filter(|arg| arg.starts_with("--")) {
            assert!(
                lists(&accepted, flag),
                "{}: {flag} is not a flag of `collect{}`",
                invocation.origin,
                subcommand.map(|s| format!(" {s}")).unwrap_or_default()
            );
        }
    }
    // What each deploy is made of.
    let compose: Vec<&Invocation> = all.iter().filter(|i| i.origin.starts_with("docker-compose")).collect();
    let collectors = compose.iter().filter(|i| i.is_collector()).count();
    assert_eq!(collectors, 3, "docker-compose.yml runs three collectors");
    assert!(
        compose.iter().filter(|i| i.is_collector()).all(|i| !i.has("--follow")),
        "a compose collector drains its batch and exits"
    );
    for deploy in ["docker-compose", "k8s/"] {
        for command in ["enqueue", "export"] {
            assert!(
                all.iter().any(|i| i.origin.starts_with(deploy) && i.subcommand() == Some(command)),
                "{deploy} runs `collect {command}`"
            );
        }
    }
}

/// The local versions of an invocation's arguments.
struct Local {
    args: Vec<String>,
    metrics: Option<SocketAddr>,
    out: Option<PathBuf>,
}

/// `invocation`'s arguments for a run here: its Redis, mounted files, output directory and
/// metrics address swapped for local ones, after checking each is one its container has.
fn localize(invocation: &Invocation, redis: &Redis, dir: &Path) -> Local {
    let origin = &invocation.origin;
    let mut local = Local { args: Vec::new(), metrics: None, out: None };
    let mut args = invocation.args.iter();
    while let Some(arg) = args.next() {
        local.args.push(arg.clone());
        let flag = arg.as_str();
        let local_only = ["--redis", "--metrics-addr"].contains(&flag);
        if !(local_only || INPUT_FLAGS.contains(&flag) || OUTPUT_FLAGS.contains(&flag)) {
            continue;
        }
        let value = args.next().unwrap_or_else(|| panic!("{origin}: {flag} has no value"));
        let unique = dir.join(format!(
            "{}-{}",
            local.args.len(),
            Path::new(value).file_name().unwrap_or_default().to_string_lossy()
        ));
        let local_value = match flag {
            "--redis" => {
                assert_eq!(value, &invocation.redis, "{origin}: --redis is not this deploy's Redis");
                redis.url()
            }
            "--metrics-addr" => {
                let addr = SocketAddr::from(([127, 0, 0, 1], free_port().expect("a free port")));
                local.metrics = Some(addr);
                addr.to_string()
            }
            _ if INPUT_FLAGS.contains(&flag) => {
                let contents = invocation
                    .files
                    .get(value)
                    .unwrap_or_else(|| panic!("{origin}: {flag} {value} is not a file mounted in the container"));
                std::fs::write(&unique, contents).expect("write an input");
                unique.display().to_string()
            }
            _ => {
                let parent = Path::new(value).parent().unwrap_or(Path::new("/"));
                assert!(
                    invocation.writable.iter().any(|mount| Path::new(mount) == parent),
                    "{origin}: {flag} {value} is not in a writable volume ({:?})",
                    invocation.writable
                );
                if flag == "--out" {
                    local.out = Some(unique.clone());
                }
                unique.display().to_string()
            }
        };
        local.args.push(local_value);
    }
    local
}

/// The metric families `/metrics` declares (`# TYPE name kind`).
fn families(metrics: &str) -> BTreeSet<&str> {
    metrics.lines().filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next()).collect()
}

/// Whether `/metrics` has a series of `name` with every label of `labels`.
fn has_series(metrics: &str, name: &str, labels: &[(String, String)]) -> bool {
    metrics.lines().filter_map(|line| line.strip_prefix(name)?.strip_prefix('{')).any(|rest| {
        let inside = rest.split('}').next().unwrap_or_default();
        labels.iter().all(|(key, value)| inside.split(',').any(|pair| pair == format!("{key}=\"{value}\"")))
    })
}

fn spawn(args: &[String]) -> tokio::process::Child {
    tokio::process::Command::new(collect_binary())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("collect starts")
}

/// Stops a following collector as its image does (SIGINT) and checks it stopped cleanly.
async fn interrupt(child: tokio::process::Child, origin: &str) {
    let pid = child.id().expect("running").to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().expect("kill runs").success());
    let output = tokio::time::timeout(WITHIN, child.wait_with_output()).await.expect("stops").expect("exit status");
    assert_eq!(output.status.code(), Some(130), "{origin}: {}", String::from_utf8_lossy(&output.stderr));
}

/// Runs a command line that ends by itself and checks it succeeds; its standard output.
async fn succeeds(args: &[String], origin: &str) -> String {
    let output =
        tokio::time::timeout(WITHIN, spawn(args).wait_with_output()).await.expect("ends").expect("exit status");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{origin}: collect {args:?} failed ({}): {stderr}", output.status);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_collect_command_runs_with_its_files_against_a_real_redis() {
    let redis = Redis::start_durable();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut all = invocations();
    // Collectors on the empty queue first: nothing is fetched (the example URLs are
    // placeholders), yet every flag is parsed for real and every file read: a draining
    // collector is refused only by the last check before work, the queue's emptiness, and a
    // following one waits. Then the enqueues, then the exports (which need URLs).
    all.sort_by_key(|i| match i.subcommand() {
        None => 0,
        Some("enqueue") => 1,
        Some(_) => 2,
    });
    for invocation in &all {
        let origin = invocation.origin.as_str();
        let local = localize(invocation, &redis, dir.path());
        if !invocation.has("--follow") && invocation.subcommand().is_none() && invocation.has("--queue") {
            let output = tokio::time::timeout(WITHIN, spawn(&local.args).wait_with_output())
                .await
                .expect("ends")
                .expect("exit status");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.code() == Some(2) && stderr.contains("has no URLs"),
                "{origin}: collect {:?} should get past every check but the empty queue: {stderr}",
                local.args
            );
            continue;
        }
        if !invocation.has("--follow") {
            let said = succeeds(&local.args, origin).await;
            if invocation.subcommand() == Some("enqueue") {
                let list = &invocation.files[invocation.value("--urls").expect("--urls")];
                let urls = list.lines().filter(|line| !line.trim().is_empty() && !line.starts_with('#')).count();
                // "enqueued A URLs to queue Q (B already queued or repeated, left out)"
                let counts: Vec<usize> = said.split([' ', '(']).filter_map(|word| word.parse().ok()).collect();
                assert!(urls > 0 && counts.iter().sum::<usize>() == urls, "{origin}: {urls} URLs, yet: {said}");
            }
            continue;
        }
        // A following collector stays: it must answer its probes and serve its queue's depth.
        let child = spawn(&local.args);
        let addr = local.metrics.unwrap_or_else(|| panic!("{origin}: a following collector without --metrics-addr"));
        let queue = vec![("queue_name".to_owned(), format!("work-{}", invocation.value("--queue").expect("--queue")))];
        let (probes, queue) = (&invocation.probes, &queue);
        assert!(!probes.is_empty(), "{origin}: no probes");
        eventually(WITHIN, &format!("{origin} answers its probes and serves its queue's depth"), || async move {
            let mut healthy = true;
            for (path, _) in probes {
                healthy &= http_get(addr, path).await.is_some_and(|(status, _)| status == 200);
            }
            let metrics = http_get(addr, "/metrics").await.map(|(_, body)| body).unwrap_or_default();
            healthy && has_series(&metrics, "processing_queue_depth", queue)
        })
        .await;
        interrupt(child, origin).await;
    }
}

/// The adapter's own config file, from its ConfigMap.
fn adapter_config(docs: &[(String, Yaml)]) -> Yaml {
    let config = docs
        .iter()
        .map(|(_, doc)| doc)
        .find(|doc| doc["kind"].as_str() == Some("ConfigMap") && !doc["data"]["config.yaml"].is_badvalue())
        .expect("a ConfigMap holds prometheus-adapter's config.yaml");
    let text = text(&config["data"]["config.yaml"], "the adapter's config.yaml");
    YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("the adapter's config.yaml: {e}")).remove(0)
}

/// The metric a PromQL series selector names (`name{...}` → `name`).
fn metric_of(selector: &str) -> &str {
    selector.split(['{', ' ']).next().unwrap_or_default().trim()
}

/// The value a selector matches `label` with (`label="v"` or `label=~"v"`).
fn matcher<'a>(selector: &'a str, label: &str) -> Option<&'a str> {
    let rest = selector.split_once(&format!("{label}="))?.1;
    let rest = rest.strip_prefix('~').unwrap_or(rest).strip_prefix('"')?;
    rest.split('"').next()
}

/// The HPA, and the collector of the Deployment it scales.
fn autoscaled(docs: &[(String, Yaml)]) -> (&Yaml, Invocation) {
    let (_, hpa) = docs
        .iter()
        .find(|(_, doc)| doc["kind"].as_str() == Some("HorizontalPodAutoscaler"))
        .expect("a HorizontalPodAutoscaler");
    assert_eq!(text(&hpa["apiVersion"], "HPA apiVersion"), "autoscaling/v2");
    let target = &hpa["spec"]["scaleTargetRef"];
    assert_eq!(text(&target["kind"], "scaleTargetRef.kind"), "Deployment");
    assert_eq!(text(&target["apiVersion"], "scaleTargetRef.apiVersion"), "apps/v1");
    let name = text(&target["name"], "scaleTargetRef.name");
    manifest(docs, "Deployment", name); // panics unless it exists
    let collector = k8s_invocations(&image())
        .into_iter()
        .find(|i| i.origin.ends_with(&format!(" Deployment {name}")) && i.is_collector())
        .unwrap_or_else(|| panic!("the HPA scales Deployment {name}, which runs no collector on a queue"));
    (hpa, collector)
}

#[test]
fn the_autoscaler_scales_the_collectors_on_their_queues_depth_through_the_adapter() {
    let docs = manifests();
    let (hpa, collector) = autoscaled(&docs);
    let queue = collector.value("--queue").expect("--queue");
    assert!(collector.has("--follow"), "a Deployment restarts a collector that exits: it must --follow");
    assert_eq!(collector.value("--consumer"), Some(POD_NAME), "--consumer comes from the pod's name");
    let metrics = hpa["spec"]["metrics"].as_vec().expect("HPA metrics");
    assert_eq!(metrics.len(), 1);
    let external = &metrics[0]["external"];
    assert_eq!(text(&metrics[0]["type"], "metric type"), "External");
    assert_eq!(text(&external["target"]["type"], "target type"), "AverageValue");
    let name = text(&external["metric"]["name"], "external metric name");
    let selector = external["metric"]["selector"]["matchLabels"].as_hash().expect("a selector");
    let wanted = format!("work-{queue}");
    assert_eq!(selector.get(&Yaml::String("queue_name".into())).and_then(Yaml::as_str), Some(wanted.as_str()));

    // The adapter exposes that name from the collectors' gauge, over the queue_name label.
    let adapter = adapter_config(&docs);
    let rule = adapter["externalRules"]
        .as_vec()
        .into_iter()
        .flatten()
        .find(|rule| text(&rule["name"]["as"], "name.as") == name)
        .unwrap_or_else(|| panic!("no externalRule exposes {name}"));
    let series = text(&rule["seriesQuery"], "seriesQuery");
    assert_eq!(metric_of(series), name, "the rule reads the gauge of the same name");
    assert_eq!(text(&rule["name"]["matches"], "name.matches"), format!("^{name}$"));
    let pattern = matcher(series, "queue_name").expect("the rule selects on queue_name");
    assert!(wanted.starts_with(pattern.trim_end_matches(".*")), "{pattern} does not match {wanted}");
    let query = text(&rule["metricsQuery"], "metricsQuery");
    assert!(query.contains("by (queue_name)") && query.contains("<<.LabelMatchers>>"), "{query}");
    assert!(
        rule["resources"]["overrides"]["namespace"]["resource"].as_str() == Some("namespace"),
        "the HPA's namespace maps to the namespace label"
    );
}

/// The metric names of the README's "What to watch" list.
fn readme_metrics() -> Vec<String> {
    let readme = read(&deploy_dir().join("README.md"));
    let section = readme.split("## What to watch").nth(1).expect("deploy/README.md has a What to watch section");
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("- `"))
        .map(|rest| rest.split(['`', '{']).next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_the_deploys_name_are_served_by_a_working_collector() {
    let docs = manifests();
    let (hpa, mut collector) = autoscaled(&docs);
    let external = &hpa["spec"]["metrics"][0]["external"]["metric"];
    let depth = text(&external["name"], "external metric name").to_owned();
    let labels: Vec<(String, String)> = external["selector"]["matchLabels"]
        .as_hash()
        .into_iter()
        .flatten()
        .map(|(key, value)| (text(key, "label").to_owned(), text(value, "label value").to_owned()))
        .collect();
    let adapter = adapter_config(&docs);
    let mut names: BTreeSet<String> = readme_metrics().into_iter().collect();
    assert!(names.len() >= 4, "the README names the metrics to watch: {names:?}");
    names.insert(depth.clone());
    for rule in adapter["externalRules"].as_vec().into_iter().flatten() {
        names.insert(metric_of(text(&rule["seriesQuery"], "seriesQuery")).to_owned());
    }

    // The Deployment's own command line, on a queue of the testbed's site through a
    // testbed proxy instead of the placeholders.
    let redis = Redis::start_durable();
    let site = TargetServer::start().await.expect("site starts");
    let proxy = FaultProxy::slow(Duration::ZERO).await.expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let proxies = collector.value("--proxies").expect("--proxies").to_owned();
    collector.files.insert(proxies, format!("{} id=testbed\n", proxy.url()));
    let pages = 20;
    let urls = dir.path().join("urls.txt");
    std::fs::write(&urls, (0..pages).map(|n| format!("{}/product/{n}\n", site.url())).collect::<String>())
        .expect("write urls");
    let queue = collector.value("--queue").expect("--queue").to_owned();
    let enqueue = ["enqueue", "--redis", &redis.url(), "--queue", &queue, "--urls", &urls.display().to_string()];
    succeeds(&enqueue.map(str::to_owned), "enqueue").await;
    let local = localize(&collector, &redis, dir.path());
    let child = spawn(&local.args);
    let (addr, out) = (local.metrics.expect("--metrics-addr"), local.out.expect("--out"));

    let (labels, depth, out) = (&labels, depth.as_str(), &out);
    let wanted = format!("every page collected and {depth} with {labels:?} at 0");
    let metrics = eventually_some(WITHIN, &wanted, || async move {
        let lines = std::fs::read_to_string(out).unwrap_or_default().lines().count();
        let metrics = http_get(addr, "/metrics").await.map(|(_, body)| body).unwrap_or_default();
        let drained = metrics.lines().any(|line| line.ends_with(" 0") && has_series(line, depth, labels));
        (lines == pages && drained).then_some(metrics)
    })
    .await;
    // The gauges sampled every second may come a moment after the last page.
    let missing: Vec<&String> = names.iter().filter(|name| !families(&metrics).contains(name.as_str())).collect();
    let names = &names;
    eventually(WITHIN, &format!("{missing:?} served (missing after the last page)"), || async move {
        let metrics = http_get(addr, "/metrics").await.map(|(_, body)| body).unwrap_or_default();
        let served = families(&metrics);
        names.iter().all(|name| served.contains(name.as_str()))
    })
    .await;
    interrupt(child, &collector.origin).await;
    assert!(site.requests_to("/product/0") >= 1, "the run went to the testbed's site");
}

#[test]
fn prometheus_and_the_probes_reach_every_collector_on_its_metrics_port() {
    let all = invocations();
    // Compose: Prometheus scrapes exactly the collectors, each on its --metrics-addr port.
    let config = &load("prometheus.yml")[0];
    let mut scraped = BTreeSet::new();
    for job in config["scrape_configs"].as_vec().expect("scrape_configs") {
        let path = job["metrics_path"].as_str().unwrap_or("/metrics");
        assert_eq!(path, "/metrics");
        for targets in job["static_configs"].as_vec().into_iter().flatten() {
            for target in string_list(&targets["targets"], "targets").unwrap_or_default() {
                scraped.insert(target);
            }
        }
    }
    let collectors: BTreeSet<String> = all
        .iter()
        .filter(|i| i.origin.starts_with("docker-compose") && i.is_collector())
        .map(|i| {
            let service = i.origin.rsplit(' ').next().unwrap_or_default();
            let port = i.metrics_port().unwrap_or_else(|| panic!("{}: no --metrics-addr", i.origin));
            format!("{service}:{port}")
        })
        .collect();
    assert_eq!(scraped, collectors, "prometheus.yml's targets are the compose collectors' metrics addresses");
    let services = compose_services();
    let (_, prometheus) = services
        .iter()
        .find(|(_, service)| service["image"].as_str().is_some_and(|image| image.starts_with("prom/prometheus")))
        .expect("compose runs Prometheus");
    let volumes = string_list(&prometheus["volumes"], "prometheus volumes").unwrap_or_default();
    assert!(volumes.iter().any(|v| v.starts_with("./prometheus.yml:/etc/prometheus/prometheus.yml")), "{volumes:?}");

    // Kubernetes: the scrape annotations, the container port and the probes meet
    // --metrics-addr.
    let docs = manifests();
    let (_, collector) = autoscaled(&docs);
    let port = collector.metrics_port().expect("the collectors serve metrics");
    let name = collector.origin.rsplit(' ').next().unwrap_or_default();
    let template = &manifest(&docs, "Deployment", name)["spec"]["template"];
    let annotations = &template["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/port"].as_str(), Some(port.to_string().as_str()));
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"));
    let probed: BTreeSet<(&str, u16)> = collector.probes.iter().map(|(path, port)| (path.as_str(), *port)).collect();
    assert_eq!(probed, BTreeSet::from([("/health", port), ("/ready", port)]));
}

#[test]
fn the_compose_prometheus_config_and_the_rules_it_loads_pass_promtool() {
    // /etc/prometheus as the compose file mounts it.
    let services = compose_services();
    let (_, prometheus) = services
        .iter()
        .find(|(_, service)| service["image"].as_str().is_some_and(|image| image.starts_with("prom/prometheus")))
        .expect("compose runs Prometheus");
    let etc = tempfile::tempdir().expect("temp dir");
    for volume in string_list(&prometheus["volumes"], "prometheus volumes").unwrap_or_default() {
        let mut parts = volume.split(':');
        let (source, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let name = target.strip_prefix("/etc/prometheus/").expect("mounted in /etc/prometheus");
        std::fs::write(etc.path().join(name), read(&deploy_dir().join(source))).expect("copy a mounted file");
    }
    let promtool = find_program("promtool").expect("promtool is installed (scripts/test.sh installs prometheus)");
    let output = Command::new(promtool)
        .args(["check", "config", "prometheus.yml"])
        .current_dir(etc.path())
        .output()
        .expect("promtool runs");
    let said = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "promtool check config:\n{said}");

    // The jobs the rules watch are the jobs it scrapes.
    let config = &load("prometheus.yml")[0];
    let jobs: BTreeSet<&str> =
        config["scrape_configs"].as_vec().into_iter().flatten().map(|job| text(&job["job_name"], "job_name")).collect();
    for file in string_list(&config["rule_files"], "rule_files").unwrap_or_default() {
        let rules = read(&etc.path().join(file));
        for watched in rules.split("job=\"").skip(1).filter_map(|rest| rest.split('"').next()) {
            assert!(jobs.contains(watched), "the rules watch job {watched:?}; prometheus.yml scrapes {jobs:?}");
        }
    }
}

/// The command line of each deploy's Redis: compose's and the manifests'.
fn redis_commands() -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for (name, service) in compose_services() {
        if let Some(command) =
            string_list(&service["command"], &name).filter(|c| c.first().is_some_and(|c| c == "redis-server"))
        {
            found.push((format!("docker-compose.yml service {name}"), command));
        }
    }
    for (file, doc) in manifests() {
        for container in doc["spec"]["template"]["spec"]["containers"].as_vec().into_iter().flatten() {
            let mut command = string_list(&container["command"], &file).unwrap_or_default();
            command.extend(string_list(&container["args"], &file).unwrap_or_default());
            if command.first().is_some_and(|c| c == "redis-server") {
                found.push((format!("{file} {}", text(&doc["metadata"]["name"], &file)), command));
            }
        }
    }
    found
}

#[test]
fn the_redis_of_each_deploy_keeps_an_append_only_file() {
    let commands = redis_commands();
    assert_eq!(commands.len(), 2, "one Redis in compose, one in the manifests: {commands:?}");
    for (origin, command) in commands {
        // Its own flags, run for real; where it listens and keeps its files are the test's.
        let mut own = Vec::new();
        let mut args = command[1..].iter();
        while let Some(arg) = args.next() {
            if ["--port", "--bind", "--dir"].contains(&arg.as_str()) {
                args.next();
            } else {
                own.push(arg.clone());
            }
        }
        let server = ServerProcess::start("redis-server", |dir, port| {
            let place = ["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir", &dir.display().to_string()]
                .map(std::ffi::OsString::from);
            own.iter().map(Into::into).chain(place).collect()
        });
        let reply = Command::new("redis-cli")
            .args(["-p", &server.port().to_string(), "CONFIG", "GET", "appendonly"])
            .output()
            .expect("redis-cli runs");
        let reply = String::from_utf8_lossy(&reply.stdout);
        assert_eq!(reply.split_whitespace().collect::<Vec<_>>(), ["appendonly", "yes"], "{origin}: {command:?}");
    }
}

#[test]
fn the_image_builds_collect_with_the_queue_and_runs_it_as_a_non_root_user() {
    let image = image();
    let build = image.text.replace("\\\n", " ");
    let cargo = build.lines().find(|line| line.contains("cargo build")).expect("the Dockerfile runs cargo build");
    for part in ["--release", "--features redis", "-p harvester-collect", "--bin collect"] {
        assert!(cargo.contains(part), "the Dockerfile's build lacks {part}: {cargo}");
    }
    assert!(image.text.contains("/usr/local/bin/collect"), "collect is on the runtime image's PATH");
    let user = image.text.lines().filter_map(|line| line.strip_prefix("USER ")).next_back().expect("a USER");
    let user = user.split(':').next().unwrap_or_default().trim();
    assert!(!["root", "0"].contains(&user), "the image runs as {user}");
    assert_eq!(image.entrypoint, ["collect"]);
    // Ctrl-C is collect's graceful stop; SIGTERM would cut URLs in flight short.
    assert!(image.text.lines().any(|line| line == "STOPSIGNAL SIGINT"), "the image stops collect with SIGINT");
}
