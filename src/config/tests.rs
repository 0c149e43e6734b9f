use super::*;

fn err(text: &str) -> ConfigError {
    Config::parse(text, "fleet.toml").unwrap_err()
}

#[test]
fn embedded_default_is_the_local_machine_only() {
    let c = Config::load(None).unwrap();
    assert_eq!(c.source, EMBEDDED_NAME);
    assert_eq!(c.hosts.len(), 1);
    assert_eq!(c.hosts[0].name, "local");
    assert_eq!(c.hosts[0].target, Target::Local);
    assert!(c.services.is_empty());
}

#[test]
fn unknown_fields_are_rejected_with_file_and_position() {
    let e = err("[hosts.a]\naddress = \"10.0.0.1\"\nsudoo = true\n");
    assert_eq!(e.file, "fleet.toml");
    assert_eq!(e.field, "line 3, column 1");
    assert!(e.message.contains("unknown field `sudoo`"), "{}", e.message);
}

#[test]
fn cross_references_name_the_field() {
    let e = err("[hosts.a]\n[services.web]\nmanager = \"systemd\"\nhosts = [\"a\", \"b\"]\n");
    assert_eq!(e.field, "services.web.hosts[1]");
    assert!(e.message.contains("unknown host `b`"));

    let e = err("[services.web]\nmanager = \"systemd\"\napi_key_secret = \"key\"\n");
    assert_eq!(e.field, "services.web.api_key_secret");

    let e = err("[hosts.a]\naddress = \"10.0.0.1\"\nssh = { user = \"ops\" }\n");
    assert_eq!(e.field, "ssh.known_hosts");

    let e = err("[hosts.a]\n[services.web]\nmanager = \"systemd\"\nunit = \"web;reboot\"\n");
    assert_eq!(e.field, "services.web.unit");
    assert!(e.message.contains("shell metacharacter"));

    let e = err("[server]\ncommand_timeout_secs = 0\n");
    assert_eq!(e.field, "server.command_timeout_secs");

    let e = err("[secrets.k]\nenv = \"A\"\nfile = \"/b\"\n");
    assert_eq!(e.field, "secrets.k");

    let e = err(
        "[hosts.a]\n[services.web]\nmanager = \"systemd\"\nlogs = { app = \"relative/path\" }\n",
    );
    assert_eq!(e.field, "services.web.logs.app");
}

#[test]
fn ssh_hosts_resolve_defaults() {
    let c = Config::parse(
        "[ssh]\nknown_hosts = \"/k\"\n[hosts.web-1]\naddress = \"10.0.0.5\"\nssh = { user = \"ops\", port = 2222 }\nsudo = true\n\
         [services.app]\nmanager = \"systemd\"\nhealth_url = \"http://{address}:8080/health\"\n",
        "f",
    )
    .unwrap();
    let h = &c.hosts[0];
    assert_eq!(
        h.target,
        Target::Ssh(SshTarget {
            host: "10.0.0.5".into(),
            user: Some("ops".into()),
            port: Some(2222),
            proxy_jump: vec![]
        })
    );
    assert!(h.sudo);
    let s = &c.services[0];
    assert_eq!(s.unit, "app");
    assert_eq!(s.hosts, vec!["web-1".to_string()]);
    assert_eq!(
        Service::url_for(s.health_url.as_deref().unwrap(), h),
        "http://10.0.0.5:8080/health"
    );
}

#[test]
fn secrets_load_by_value_and_mask() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("key");
    std::fs::write(&f, "s3cr3t-value\n").unwrap();
    let c = Config::parse(&format!("[secrets.api]\nfile = \"{}\"\n", f.display()), "f").unwrap();
    assert_eq!(c.secrets.get("api").unwrap(), "s3cr3t-value");
    assert_eq!(c.secrets.mask("key=s3cr3t-value!"), "key=****!");
    // A digest that clipped a line inside the secret leaves no prefix of it.
    let clipped = crate::digest::clip("GET /api?key=s3cr3t-value", 20);
    assert_eq!(clipped, "GET /api?key=s3cr3t-…");
    assert_eq!(c.secrets.mask(&clipped), "GET /api?key=****…");
    assert!(!format!("{:?}", c.secrets).contains("s3cr3t"));
    // From the environment too, trimmed: a newline from `export X=$(cat file)` is not part of it.
    // SAFETY: a variable only this test reads, set before the config that reads it is parsed.
    unsafe { std::env::set_var("RUNBOOK_TEST_ENV_SECRET", "  env-secret-1\n") };
    let c = Config::parse("[secrets.e]\nenv = \"RUNBOOK_TEST_ENV_SECRET\"\n", "f").unwrap();
    assert_eq!(c.secrets.get("e").unwrap(), "env-secret-1");
}

#[test]
fn schema_describes_the_file() {
    let v = Config::json_schema();
    let props = v["properties"].as_object().unwrap();
    for k in [
        "server",
        "ssh",
        "secrets",
        "prometheus",
        "load_balancer",
        "hosts",
        "services",
        "diagnostics",
    ] {
        assert!(props.contains_key(k), "{k}");
    }
}

#[test]
fn endpoint_urls_take_secrets_by_placeholder() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tok");
    std::fs::write(&f, "123:abc").unwrap();
    let text = format!(
        "[secrets.bot]\nfile = \"{}\"\n[[diagnostics.endpoints]]\nname = \"telegram_api\"\nurl = \"https://api.example/bot{{secret:bot}}/getMe\"\n",
        f.display()
    );
    let c = Config::parse(&text, "f").unwrap();
    let ep = &c.diagnostics.endpoints[0];
    assert_eq!(
        ep.resolved_url(&c.secrets).unwrap(),
        "https://api.example/bot123:abc/getMe"
    );
    assert!(!ep.url.contains("abc"));
    // A secret cannot add a path segment, a query or a fragment; its encoded form is masked.
    std::fs::write(&f, "12/x?y#z w").unwrap();
    let c = Config::parse(&text, "f").unwrap();
    let url = c.diagnostics.endpoints[0].resolved_url(&c.secrets).unwrap();
    assert_eq!(url, "https://api.example/bot12%2Fx%3Fy%23z%20w/getMe");
    assert_eq!(c.secrets.mask(&url), "https://api.example/bot****/getMe");

    let e = err("[[diagnostics.endpoints]]\nname = \"t\"\nurl = \"https://x/{secret:nope}\"\n");
    assert_eq!(e.field, "diagnostics.endpoints[0].url");
}

#[test]
fn database_table_is_validated_with_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("url");
    std::fs::write(&url, "postgres://runbook:pw@10.0.0.5:5432/app\n").unwrap();
    let base = format!(
        "[secrets.db]\nfile = \"{}\"\n[hosts.db-1]\n[services.postgresql]\nmanager = \"systemd\"\nrole = \"database\"\n",
        url.display()
    );
    let c = Config::parse(
        &format!("{base}[database]\nurl_secret = \"db\"\nservice = \"postgresql\"\n"),
        "f",
    )
    .unwrap();
    let d = c.database.as_ref().unwrap();
    assert_eq!(d.url_secret, "db");
    assert_eq!(d.service.as_deref(), Some("postgresql"));
    assert_eq!(d.statement_timeout, Duration::from_secs(30));
    assert!(Config::parse(&base, "f").unwrap().database.is_none());

    let e = err(&format!("{base}[database]\nservice = \"postgresql\"\n"));
    assert_eq!(e.file, "fleet.toml");
    assert!(e.message.contains("missing field `url_secret`"), "{e}");

    let e = err(&format!("{base}[database]\nurl_secret = \"nope\"\n"));
    assert_eq!(e.field, "database.url_secret");
    assert!(e.message.contains("`nope` is not defined"), "{e}");

    let e = err(&format!(
        "{base}[database]\nurl_secret = \"db\"\nservice = \"mysql\"\n"
    ));
    assert_eq!(e.field, "database.service");
    assert!(e.message.contains("unknown service `mysql`"), "{e}");

    let e = err(&format!(
        "{base}[database]\nurl_secret = \"db\"\nstatement_timeout_secs = 0\n"
    ));
    assert_eq!(e.field, "database.statement_timeout_secs");

    let e = err(&format!(
        "{base}[database]\nurl_secret = \"db\"\nurl = \"x\"\n"
    ));
    assert!(e.message.contains("unknown field `url`"), "{e}");

    // A secret that is not a postgres URL is named, its value never shown.
    std::fs::write(&url, "mysql://u:hunter2@h/db").unwrap();
    let e = err(&format!("{base}[database]\nurl_secret = \"db\"\n"));
    assert_eq!(e.field, "database.url_secret");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn swarm_table_is_validated_with_file_and_field() {
    let c = Config::parse(
        "[swarm]\ndocker_host = \"tcp://127.0.0.1:23750\"\nservices = [\"cctelegram_mcp-server\"]\n",
        "f",
    )
    .unwrap();
    let s = c.swarm.as_ref().unwrap();
    assert_eq!(s.docker_host, "tcp://127.0.0.1:23750");
    assert_eq!(s.services, ["cctelegram_mcp-server"]);
    assert_eq!(s.max_replicas, 10, "the default");
    assert!(Config::parse("", "f").unwrap().swarm.is_none());

    let base = "[swarm]\ndocker_host = \"tcp://127.0.0.1:23750\"\n";
    for (extra, field, says) in [
        (
            "services = [\"a;reboot\"]\n",
            "swarm.services[0]",
            "shell metacharacter",
        ),
        (
            "services = [\"a\", \"-H\"]\n",
            "swarm.services[1]",
            "read as an option",
        ),
        (
            "services = [\"a\", \"a\"]\n",
            "swarm.services[1]",
            "listed twice",
        ),
        (
            "services = []\n",
            "swarm.services",
            "list the Swarm services",
        ),
        (
            "services = [\"a\"]\nmax_replicas = 0\n",
            "swarm.max_replicas",
            "out of range",
        ),
    ] {
        let e = err(&format!("{base}{extra}"));
        assert_eq!(
            (e.file.as_str(), e.field.as_str()),
            ("fleet.toml", field),
            "{e}"
        );
        assert!(e.message.contains(says), "{e}");
    }
    let e = err("[swarm]\ndocker_host = \"tcp://h:2375 --tls\"\nservices = [\"a\"]\n");
    assert_eq!(e.field, "swarm.docker_host");
    let e = err("[swarm]\nservices = [\"a\"]\n");
    assert!(e.message.contains("missing field `docker_host`"), "{e}");
    let e = err(
        "[swarm]\ndocker_host = \"unix:///run/docker.sock\"\nservices = [\"a\"]\nhost = \"x\"\n",
    );
    assert!(e.message.contains("unknown field `host`"), "{e}");
}

#[test]
fn aws_table_is_validated_with_file_and_field() {
    const ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/cctelegram-tg/70a23d51b023df0f";
    let base = "[secrets.ak]\nenv = \"RUNBOOK_TEST_NO_SUCH_VAR_AK\"\n[secrets.sk]\nenv = \"RUNBOOK_TEST_NO_SUCH_VAR_SK\"\n\
                [hosts.mcp-01]\n[hosts.mcp-02]\n";
    let table = |extra: &str| {
        format!(
            "{base}[aws]\nregion = \"us-east-1\"\ntarget_group_arn = \"{ARN}\"\n{extra}\n\
             instances = {{ mcp-01 = \"i-0123456789abcdef0\", mcp-02 = \"i-1234abcd\" }}\n"
        )
    };
    let c = Config::parse(
        &table("endpoint_url = \"http://127.0.0.1:5000\"\naccess_key_secret = \"ak\"\nsecret_key_secret = \"sk\"\ntarget_port = 8080"),
        "f",
    )
    .unwrap();
    let a = c.aws.as_ref().unwrap();
    assert_eq!(a.cli, "aws", "the default");
    assert_eq!(a.target_group_name, "cctelegram-tg");
    assert_eq!(a.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(a.target_port, Some(8080));
    assert_eq!(
        a.credentials,
        AwsCredentials::Secrets {
            access_key_secret: "ak".into(),
            secret_key_secret: "sk".into()
        }
    );
    assert_eq!(a.host_of("i-1234abcd"), Some("mcp-02"));
    let c = Config::parse(&table("profile = \"oncall\""), "f").unwrap();
    assert_eq!(
        c.aws.unwrap().credentials,
        AwsCredentials::Profile("oncall".into())
    );
    assert_eq!(
        Config::parse(&table(""), "f")
            .unwrap()
            .aws
            .unwrap()
            .credentials,
        AwsCredentials::Default
    );
    assert!(Config::parse(base, "f").unwrap().aws.is_none());

    for (extra, field, says) in [
        ("cli = \"aws --debug\"", "aws.cli", "shell metacharacter"),
        (
            "endpoint_url = \"http://key:pw@127.0.0.1:5000\"",
            "aws.endpoint_url",
            "characters",
        ),
        (
            "endpoint_url = \"127.0.0.1:5000\"",
            "aws.endpoint_url",
            "http://",
        ),
        (
            "profile = \"p\"\naccess_key_secret = \"ak\"\nsecret_key_secret = \"sk\"",
            "aws.profile",
            "not both",
        ),
        (
            "access_key_secret = \"ak\"",
            "aws.secret_key_secret",
            "required",
        ),
        (
            "access_key_secret = \"nope\"\nsecret_key_secret = \"sk\"",
            "aws.access_key_secret",
            "`nope` is not defined",
        ),
        ("target_port = 0", "aws.target_port", "not a port"),
    ] {
        let e = err(&table(extra));
        assert_eq!(
            (e.file.as_str(), e.field.as_str()),
            ("fleet.toml", field),
            "{e}"
        );
        assert!(e.message.contains(says), "{e}");
    }
    let with = |region: &str, arn: &str, instances: &str| {
        err(&format!(
            "{base}[aws]\nregion = \"{region}\"\ntarget_group_arn = \"{arn}\"\ninstances = {{ {instances} }}\n"
        ))
    };
    let e = with("eu-west-1", ARN, "mcp-01 = \"i-1234abcd\"");
    assert_eq!(e.field, "aws.target_group_arn");
    assert!(e.message.contains("is in `us-east-1`"), "{e}");
    let e = with("us-east-1", "arn:aws:ec2:x", "mcp-01 = \"i-1234abcd\"");
    assert_eq!(e.field, "aws.target_group_arn");
    let e = with("useast", ARN, "mcp-01 = \"i-1234abcd\"");
    assert_eq!(e.field, "aws.region");
    let e = with("us-east-1", ARN, "mcp-09 = \"i-1234abcd\"");
    assert_eq!(e.field, "aws.instances.mcp-09");
    assert!(e.message.contains("unknown host"), "{e}");
    let e = with("us-east-1", ARN, "mcp-01 = \"i-12\"");
    assert_eq!(e.field, "aws.instances.mcp-01");
    let e = with(
        "us-east-1",
        ARN,
        "mcp-01 = \"i-1234abcd\", mcp-02 = \"i-1234abcd\"",
    );
    assert_eq!(e.field, "aws.instances.mcp-02");
    assert!(e.message.contains("two hosts"), "{e}");
    let e = with("us-east-1", ARN, "");
    assert_eq!(e.field, "aws.instances");
    let e = err(&format!(
        "[aws]\nregion = \"us-east-1\"\ninstances = {{}}\nkey = \"x\"\ntarget_group_arn = \"{ARN}\"\n"
    ));
    assert!(e.message.contains("unknown field `key`"), "{e}");
}
