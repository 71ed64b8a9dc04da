//! Which Redis a node talks to: one server (`redis://`, `rediss://`, `redis+unix://`), the
//! master a set of Sentinels names (`redis+sentinel://`), found again at every connection and
//! checked on a timer, so that a failover is followed even when no `+switch-master` is heard
//! and the old master, demoted, still answers reads (centrifugo#1189), or a Redis Cluster
//! (`redis+cluster://`), reached through any of the nodes named.

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, RedisResult};
use tracing::warn;

/// Where the master is.
pub(super) enum Target {
    /// One server.
    Direct(redis::Client),
    /// The master Sentinel names.
    Sentinel(Sentinel),
    /// A cluster, by some of its nodes (`redis://host:port`, RESP3).
    Cluster(Vec<String>),
}

/// What to open the links with.
pub(super) enum Opened {
    /// One server's client.
    One(Box<redis::Client>),
    /// A cluster client to build (the listener adds its push handler).
    Cluster(Box<redis::cluster::ClusterClientBuilder>),
}

pub(super) struct Sentinel {
    client: SentinelClient,
    name: String,
    /// The master last connected to, `host:port`.
    master: Option<String>,
    /// A connection to a Sentinel, for the checks.
    watch: Option<MultiplexedConnection>,
}

impl Target {
    /// Reads a URL: `redis+sentinel://[:password@]host:port[,host:port...]/master[/db]` for a
    /// master named by Sentinels (the password is the master's), anything else for one server.
    pub(super) fn parse(url: &str) -> RedisResult<Self> {
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            return Self::cluster(rest);
        }
        let Some(rest) = url.strip_prefix("redis+sentinel://") else {
            return redis::Client::open(url).map(Self::Direct);
        };
        let invalid = |why: &str| {
            redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "invalid sentinel URL",
                format!("{why} (redis+sentinel://host:26379[,host:26379]/master[/db])"),
            ))
        };
        let (password, rest) = match rest.rsplit_once('@') {
            Some((user_info, rest)) => {
                let password = user_info.rsplit(':').next().unwrap_or_default();
                (Some(password.to_owned()), rest)
            }
            None => (None, rest),
        };
        let (hosts, path) = rest
            .split_once('/')
            .ok_or_else(|| invalid("no master name"))?;
        let (name, db) = match path.split_once('/') {
            Some((name, db)) => (
                name,
                Some(
                    db.parse::<i64>()
                        .map_err(|_| invalid("the db is not a number"))?,
                ),
            ),
            None => (path, None),
        };
        if name.is_empty() {
            return Err(invalid("no master name"));
        }
        let mut sentinels = Vec::new();
        for host in hosts.split(',') {
            let (host, port) = host
                .rsplit_once(':')
                .ok_or_else(|| invalid("a sentinel without a port"))?;
            let port = port
                .parse::<u16>()
                .map_err(|_| invalid("a sentinel port is not a number"))?;
            sentinels.push(ConnectionAddr::Tcp(host.to_owned(), port));
        }
        let mut builder = SentinelClientBuilder::new(sentinels, name, SentinelServerType::Master)?;
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(db) = db {
            builder = builder.set_client_to_redis_db(db);
        }
        Ok(Self::Sentinel(Sentinel {
            client: builder.build()?,
            name: name.to_owned(),
            master: None,
            watch: None,
        }))
    }

    /// `redis+cluster://[:password@]host:port[,host:port...][/]`.
    fn cluster(rest: &str) -> RedisResult<Self> {
        let (password, hosts) = match rest.rsplit_once('@') {
            Some((user_info, hosts)) => (user_info.rsplit(':').next(), hosts),
            None => (None, rest),
        };
        let hosts = hosts.trim_end_matches('/');
        let mut nodes = Vec::new();
        for host in hosts.split(',') {
            let valid = host
                .rsplit_once(':')
                .is_some_and(|(name, port)| !name.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "invalid cluster URL",
                    format!("{host:?} is not host:port (redis+cluster://host:6379[,host:6379])"),
                )));
            }
            nodes.push(match password.filter(|p| !p.is_empty()) {
                Some(password) => format!("redis://:{password}@{host}/"),
                None => format!("redis://{host}/"),
            });
        }
        Ok(Self::Cluster(nodes))
    }

    /// What to open the links with now (for a Sentinel target: the master, asked of the
    /// Sentinels and checked to call itself master).
    pub(super) async fn open(&mut self) -> RedisResult<Opened> {
        match self {
            Self::Direct(client) => Ok(Opened::One(Box::new(client.clone()))),
            Self::Sentinel(sentinel) => {
                let client = sentinel.client.async_get_client().await?;
                sentinel.master = Some(client.get_connection_info().addr().to_string());
                Ok(Opened::One(Box::new(client)))
            }
            Self::Cluster(nodes) => Ok(Opened::Cluster(Box::new(
                redis::cluster::ClusterClientBuilder::new(nodes.clone())
                    .use_protocol(redis::ProtocolVersion::RESP3),
            ))),
        }
    }

    /// Whether it is a cluster: appends publish with `SPUBLISH`.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Whether the Sentinels name another master than the one last connected to (false for
    /// one server, and when no Sentinel answers: the link's own checks then decide).
    pub(super) async fn moved(&mut self) -> bool {
        let Self::Sentinel(sentinel) = self else {
            return false;
        };
        if sentinel.watch.is_none() {
            let watch = match sentinel.client.async_get_sentinel_client().await {
                Ok(client) => client.get_multiplexed_async_connection().await,
                Err(error) => Err(error),
            };
            match watch {
                Ok(watch) => sentinel.watch = Some(watch),
                Err(error) => {
                    warn!(%error, "redis: no sentinel answers; keeping the master known");
                    return false;
                }
            }
        }
        let Some(watch) = sentinel.watch.as_mut() else {
            return false;
        };
        let named: RedisResult<Option<(String, u16)>> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&sentinel.name)
            .query_async(watch)
            .await;
        match named {
            Ok(Some((host, port))) => {
                let now = ConnectionAddr::Tcp(host, port).to_string();
                let moved = sentinel.master.as_ref().is_some_and(|known| *known != now);
                if moved {
                    warn!(from = ?sentinel.master, to = %now, "redis: sentinel names a new master");
                }
                moved
            }
            Ok(None) => false,
            Err(error) => {
                warn!(%error, "redis: a sentinel check failed");
                sentinel.watch = None;
                false
            }
        }
    }

    /// Whether it is checked on a timer.
    pub(super) fn is_sentinel(&self) -> bool {
        matches!(self, Self::Sentinel(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_name_the_sentinels_and_the_master() {
        let Ok(Target::Sentinel(sentinel)) =
            Target::parse("redis+sentinel://:pw@127.0.0.1:26379,10.0.0.2:26380/main/2")
        else {
            panic!("a sentinel target");
        };
        assert_eq!(sentinel.name, "main");
        assert!(matches!(
            Target::parse("redis://127.0.0.1:6379/"),
            Ok(Target::Direct(_))
        ));
        let Ok(Target::Cluster(nodes)) = Target::parse("redis+cluster://:pw@a:7000,b:7001/") else {
            panic!("a cluster target");
        };
        assert_eq!(nodes, ["redis://:pw@a:7000/", "redis://:pw@b:7001/"]);
        for bad in [
            "redis+cluster://",
            "redis+cluster://a",
            "redis+cluster://a:1,b:x",
        ] {
            let error = Target::parse(bad).err().expect(bad).to_string();
            assert!(
                error.contains("redis+cluster://host:6379"),
                "{bad}: {error}"
            );
        }
        for bad in [
            "redis+sentinel://127.0.0.1:26379",
            "redis+sentinel://127.0.0.1:26379/",
            "redis+sentinel://127.0.0.1/main",
            "redis+sentinel://127.0.0.1:x/main",
            "redis+sentinel://127.0.0.1:26379/main/x",
        ] {
            let error = Target::parse(bad).err().expect(bad).to_string();
            assert!(
                error.contains("redis+sentinel://host:26379"),
                "{bad}: {error}"
            );
        }
    }
}
