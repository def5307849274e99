-- Allocation-heavy, deterministic SQL: bulk insert, indexes, joins,
-- aggregates, window functions, JSON, text functions, vacuum.
PRAGMA cache_size = -4000;
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v INTEGER, blob BLOB);
WITH RECURSIVE c(x) AS (VALUES(1) UNION ALL SELECT x + 1 FROM c WHERE x < 60000)
INSERT INTO t(k, v, blob) SELECT printf('k%05d', (x * 7919) % 30011), x % 977, zeroblob(x % 300) FROM c;
CREATE INDEX t_k ON t(k);
CREATE INDEX t_v ON t(v, k);
SELECT count(*), count(DISTINCT k), sum(v), sum(length(blob)) FROM t;
SELECT k, count(*) AS n, group_concat(v, '+') FROM t WHERE k < 'k00020' GROUP BY k ORDER BY n DESC, k LIMIT 5;
SELECT v, rank() OVER (ORDER BY count(*) DESC, v) FROM t GROUP BY v ORDER BY 2 LIMIT 5;
CREATE TABLE u AS SELECT k, avg(v) AS a, max(id) AS m FROM t GROUP BY k;
SELECT count(*), printf('%.4f', sum(a)), sum(m) FROM u JOIN t ON t.id = u.m;
SELECT json_group_array(json_object('k', k, 'n', v)) FROM (SELECT k, v FROM t ORDER BY id LIMIT 8);
SELECT length(group_concat(upper(k) || replace(k, '0', 'o'), ',')) FROM t;
UPDATE t SET blob = randomblob(0), k = k || '-' || v WHERE id % 3 = 0;
DELETE FROM t WHERE v % 5 = 0;
VACUUM;
SELECT count(*), sum(length(k)), (SELECT count(*) FROM pragma_index_list('t')) FROM t;
PRAGMA integrity_check;
