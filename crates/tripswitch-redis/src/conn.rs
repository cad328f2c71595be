//! A connection to the fleet's Redis: one server (or Sentinel's primary), or
//! a Redis Cluster (feature `cluster`). Either way a batch of commands gets
//! one answer per command.

use redis::aio::MultiplexedConnection;

/// A server's error reply to one command: its code, and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: String,
    pub(crate) said: String,
}

/// One command's answer.
pub(crate) type Answer = Result<redis::Value, Refusal>;

/// A connection for commands (not the subscription).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

/// A value as one command's answer: an error reply is a refusal.
pub(crate) fn answer(value: redis::Value) -> Answer {
    match value {
        redis::Value::ServerError(error) => {
            let code = error.code().to_string();
            // As Redis says it: the code, then the details.
            let said = match error.details() {
                Some(details) => format!("{code} {details}"),
                None => code.clone(),
            };
            Err(Refusal { code, said })
        }
        value => Ok(value),
    }
}

impl Conn {
    /// Whether commands go in one pipeline to one server (so several
    /// breakers' keys may share a command); not on a Cluster.
    pub(crate) fn pipelines(&self) -> bool {
        match self {
            Conn::Single(_) => true,
            #[cfg(feature = "cluster")]
            Conn::Cluster(_) => false,
        }
    }

    /// Sends `commands`: a single server gets one pipeline; a Cluster one
    /// command per slot's node, all in flight together. Fails only if the
    /// exchange itself fails; an error reply is that command's answer.
    pub(crate) async fn send(
        &mut self,
        commands: &[&redis::Cmd],
    ) -> redis::RedisResult<Vec<Answer>> {
        match self {
            Conn::Single(connection) => {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for command in commands {
                    pipe.add_command((*command).clone());
                }
                let values: Vec<redis::Value> = pipe.query_async(connection).await?;
                Ok(values.into_iter().map(answer).collect())
            }
            #[cfg(feature = "cluster")]
            Conn::Cluster(connection) => {
                let calls = commands.iter().map(|command| {
                    let mut connection = connection.clone();
                    let command = (*command).clone();
                    async move { command.query_async::<redis::Value>(&mut connection).await }
                });
                futures_util::future::join_all(calls)
                    .await
                    .into_iter()
                    .map(|result| match result {
                        Ok(value) => Ok(answer(value)),
                        Err(error) => match error.code() {
                            Some(code) => Ok(Err(Refusal {
                                code: code.to_string(),
                                said: format!("{code} {}", error.detail().unwrap_or_default()),
                            })),
                            None => Err(error),
                        },
                    })
                    .collect()
            }
        }
    }

    /// Loads the fleet's script (on every primary of a Cluster).
    pub(crate) async fn load(&mut self) -> redis::RedisResult<()> {
        let mut load = redis::cmd("SCRIPT");
        load.arg("LOAD").arg(include_str!("fleet.lua"));
        match self {
            Conn::Single(connection) => load.query_async::<redis::Value>(connection).await?,
            #[cfg(feature = "cluster")]
            Conn::Cluster(connection) => load.query_async::<redis::Value>(connection).await?,
        };
        Ok(())
    }
}
