//! Removing the group's dead consumers: members that stopped reading long
//! ago and hold no entry any more (their entries were reclaimed).

use redis::aio::MultiplexedConnection;

/// Deletes, in one atomic step on the server, every consumer of the group
/// other than the caller that has been idle for at least `ARGV[3]` ms and
/// has nothing pending; returns their names.
///
/// A script, so no entry can be delivered to a consumer between the check
/// of its pending count and its deletion (`XGROUP DELCONSUMER` drops the
/// pending entries of the consumer it deletes).
const REMOVE_DEAD_CONSUMERS: &str = r"
local removed = {}
for _, fields in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #fields, 2 do info[fields[i]] = fields[i + 1] end
  if info['name'] ~= ARGV[2]
      and tonumber(info['pending']) == 0
      and tonumber(info['idle']) >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    table.insert(removed, info['name'])
  end
end
return removed
";

/// Removes the consumers of `group` on `stream` (other than `own`) idle for
/// at least `idle_ms` with no pending entry; returns their names.
pub(crate) async fn remove_dead_consumers(
    connection: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
    own: &str,
    idle_ms: u64,
) -> Result<Vec<String>, redis::RedisError> {
    redis::cmd("EVAL")
        .arg(REMOVE_DEAD_CONSUMERS)
        .arg(1)
        .arg(stream)
        .arg(group)
        .arg(own)
        .arg(idle_ms)
        .query_async(connection)
        .await
}
