//! The LiteLLM test double as a server, for benchmarks, the browser and crash tests, and local
//! trials: `litellm-double [--port 4001] [--master-key sk-double-master] [--models a,b]`.

use std::process::ExitCode;

use litellm::double::LitellmDouble;

struct Args {
    port: u16,
    master_key: String,
    models: Vec<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        port: 4001,
        master_key: "sk-double-master".to_owned(),
        models: vec!["fake-gpt".to_owned(), "fake-gpt-2".to_owned()],
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                parsed.port = value()?
                    .parse()
                    .map_err(|_| "--port must be a port number".to_owned())?
            }
            "--master-key" => parsed.master_key = value()?,
            "--models" => parsed.models = value()?.split(',').map(str::to_owned).collect(),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::from(2);
        }
    };
    let models: Vec<&str> = args.models.iter().map(String::as_str).collect();
    let double = match LitellmDouble::start_on(args.port, &args.master_key, &models).await {
        Ok(double) => double,
        Err(error) => {
            tracing::error!(%error, "the LiteLLM test double could not start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(url = %double.base_url(), "LiteLLM test double listening");
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
