//! The hook calls' workers: a fixed number of threads, each making one blocking HTTP call at a
//! time (ureq), fed by a bounded queue. The number of workers bounds the calls in flight; a
//! full queue refuses a call at once rather than letting requests pile up behind a slow
//! application. Blocking threads keep the calls off whichever async runtime serves.

use std::time::Duration;

use roomcast_io::Verdict;
use serde_json::Value;

/// One call: where, what, and where its answer goes.
struct Job {
    url: String,
    body: String,
    answer: async_channel::Sender<Verdict<Value>>,
}

/// The workers' queue.
#[derive(Clone)]
pub(crate) struct Pool {
    jobs: async_channel::Sender<Job>,
}

impl Pool {
    /// `workers` threads, each call bounded by `timeout` end to end.
    pub(crate) fn new(workers: usize, timeout: Duration) -> Result<Self, String> {
        let (jobs, queue) = async_channel::bounded::<Job>(workers.max(1));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        for n in 0..workers.max(1) {
            let (queue, agent) = (queue.clone(), agent.clone());
            std::thread::Builder::new()
                .name(format!("roomcast-hook-{n}"))
                .spawn(move || {
                    while let Ok(job) = queue.recv_blocking() {
                        let verdict = call(&agent, &job.url, &job.body, timeout);
                        let _ = job.answer.send_blocking(verdict);
                    }
                })
                .map_err(|error| format!("could not start a hook worker: {error}"))?;
        }
        Ok(Self { jobs })
    }

    /// Posts `body` to `url`: the answer's JSON when it is a 200, else why there is none.
    pub(crate) async fn post(self, url: String, body: String) -> Verdict<Value> {
        let (answer, answered) = async_channel::bounded(1);
        let job = Job { url, body, answer };
        if self.jobs.try_send(job).is_err() {
            return Verdict::Unavailable("too many calls to the application in flight".into());
        }
        answered
            .recv()
            .await
            .unwrap_or_else(|_| Verdict::Unavailable("the hook worker stopped".into()))
    }
}

/// One blocking call.
fn call(agent: &ureq::Agent, url: &str, body: &str, timeout: Duration) -> Verdict<Value> {
    let response = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body);
    let mut response = match response {
        Ok(response) => response,
        Err(ureq::Error::Timeout(_)) => {
            return Verdict::Unavailable(format!(
                "the application did not answer within {timeout:?}"
            ));
        }
        Err(error) => {
            return Verdict::Unavailable(format!("the application is unreachable: {error}"));
        }
    };
    let status = response.status().as_u16();
    if status != 200 {
        return Verdict::Unavailable(format!("the application's hook answered {status}"));
    }
    match response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
    {
        Ok(text) => match serde_json::from_str::<Value>(&text) {
            Ok(value) => Verdict::Allow(value),
            Err(_) => Verdict::Unavailable("the application's hook answered no JSON".into()),
        },
        Err(ureq::Error::Timeout(_)) => {
            Verdict::Unavailable(format!("the application did not answer within {timeout:?}"))
        }
        Err(_) => Verdict::Unavailable("the application's answer could not be read".into()),
    }
}
