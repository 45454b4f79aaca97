//! [`ScriptCall`]: one `EVALSHA` of a Lua script, its keys and arguments written into
//! the command once.

use redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, Script, ServerErrorKind, ToRedisArgs};

use crate::connection::Handle;

/// One call of a Lua script by its hash (`EVALSHA`). When the server does not have
/// the script (`NOSCRIPT`: a restarted or failed-over server, or `SCRIPT FLUSH`), it
/// loads it and calls it again, as `redis::Script::invoke_async` does.
///
/// Built on a plain [`Cmd`] rather than `redis::ScriptInvocation`, which copies each
/// argument into a `Vec` of its own before copying it again into the command: a
/// stored delivery's body and head are written once here (measured in BENCHMARKS.md
/// section 18).
pub(crate) struct ScriptCall<'s> {
    script: &'s Script,
    command: Cmd,
}

impl<'s> ScriptCall<'s> {
    /// A call of `script` on `keys` (its `KEYS`); the arguments (`ARGV`) follow with
    /// [`arg`](Self::arg).
    pub(crate) fn new<K: ToRedisArgs>(script: &'s Script, keys: &[K]) -> Self {
        Self::with_room(script, keys, 0)
    }

    /// [`new`](Self::new), with room for `bytes` of arguments besides the keys and
    /// a few short ones: a stored delivery's bytes are written without growing the
    /// command again and again (eight times a delivery, measured in BENCHMARKS.md
    /// section 19).
    pub(crate) fn with_room<K: ToRedisArgs>(script: &'s Script, keys: &[K], bytes: usize) -> Self {
        let mut command = Cmd::with_capacity(16, 256 + bytes);
        command
            .arg("EVALSHA")
            .arg(script.get_hash())
            .arg(keys.len())
            .arg(keys);
        Self { script, command }
    }

    /// Appends one argument (or, for a collection, each of its items).
    pub(crate) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        self.command.arg(arg);
        self
    }

    /// Sends the call on `handle`; loads the script and sends it again when the
    /// server does not have it.
    pub(crate) async fn invoke<T: FromRedisValue>(&self, handle: &mut Handle) -> RedisResult<T> {
        match self.command.query_async(handle).await {
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.script.load_async(handle).await?;
                self.command.query_async(handle).await
            }
            answer => answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use hookwise_test_support::RedisServer;

    use super::*;
    use crate::connection::Connection;

    /// Answers its keys and arguments as it got them.
    const ECHO: &str = "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], #ARGV}";

    /// What [`ECHO`] answers: the two keys, the first three arguments, their count.
    type Echoed = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, i64);

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_sends_its_keys_and_arguments_as_written_and_reloads_a_flushed_script() {
        let Some(redis) = RedisServer::start("script_call") else {
            return;
        };
        let connection = Connection::open(&redis.url(), "test").expect("connection");
        let script = Script::new(ECHO);
        // A body with every byte value, a CRLF and a NUL among them.
        let body: Vec<u8> = (0..=255).collect();
        let mut call = ScriptCall::new(&script, &["k1", "k2"]);
        call.arg(&body[..]).arg(42_u64).arg(&["a", "b"][..]);
        let expected = (
            b"k1".to_vec(),
            b"k2".to_vec(),
            body.clone(),
            b"42".to_vec(),
            b"a".to_vec(),
            4_i64,
        );

        // The server has never seen the script: loaded, then run.
        let first: Echoed = connection.run_script("echo", &call).await.expect("runs");
        assert_eq!(first, expected);

        let mut handle = connection.handle();
        let (): () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut handle)
            .await
            .expect("SCRIPT FLUSH");
        let again: Echoed = connection
            .run_script("echo", &call)
            .await
            .expect("reloaded and run");
        assert_eq!(again, expected);
        let loaded: Vec<bool> = redis::cmd("SCRIPT")
            .arg("EXISTS")
            .arg(script.get_hash())
            .query_async(&mut handle)
            .await
            .expect("SCRIPT EXISTS");
        assert_eq!(loaded, [true]);
    }
}
