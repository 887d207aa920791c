/**
 * Token types of the SQL tokenizer, one character each as in libinjection's fingerprints, so
 * that a token stream reads like `s&1o1c` (string, logic, number, operator, number, comment).
 */
export const T_NUMBER = 49; // '1' numbers and literal keywords (NULL, TRUE, CURRENT_USER)
export const T_STRING = 115; // 's'
export const T_WORD = 110; // 'n' bareword: column, table, alias
export const T_KEYWORD = 107; // 'k'
export const T_UNION = 85; // 'U' UNION, INTERSECT, EXCEPT
export const T_STATEMENT = 69; // 'E' SELECT, INSERT, DROP, EXEC …
export const T_GROUPING = 66; // 'B' ORDER BY, GROUP BY
export const T_DELAY = 84; // 'T' WAITFOR DELAY / TIME
export const T_LOGIC = 38; // '&' AND, OR, XOR, &&, ||
export const T_OPERATOR = 111; // 'o'
export const T_COMMENT = 99; // 'c'
export const T_FUNCTION = 102; // 'f' a name directly followed by `(`
export const T_VARIABLE = 118; // 'v' @var, @@version
export const T_OPEN = 40; // '('
export const T_CLOSE = 41; // ')'
export const T_COMMA = 44; // ','
export const T_DOT = 46; // '.'
export const T_SEMICOLON = 59; // ';'
export const T_UNKNOWN = 63; // '?'

/** Keywords and their token type; every other name is a bareword (or a function before `(`). */
export const SQL_WORDS: ReadonlyMap<string, number> = new Map([
  ...words(T_UNION, 'union intersect except minus'),
  ...words(
    T_STATEMENT,
    'select insert update delete drop create alter truncate exec execute declare shutdown grant revoke ' +
      'merge call rename replace load handler waitfor backup restore dbcc bulk copy',
  ),
  ...words(T_LOGIC, 'and or xor'),
  ...words(T_OPERATOR, 'not like rlike ilike regexp is in between sounds div mod escape collate glob match'),
  ...words(
    T_NUMBER,
    'null true false unknown current_user current_date current_time current_timestamp localtime ' +
      'localtimestamp session_user system_user',
  ),
  ...words(
    T_KEYWORD,
    'from where into values value set as by order group having limit offset top distinct all join inner ' +
      'outer cross natural on using case when then else end asc desc with table database schema procedure ' +
      'function view index trigger if exists outfile dumpfile delay time rows fetch next only nowait ' +
      'identified to for begin while elseif returns lock share mode default user login column tablespace ' +
      'event infile data cursor go analyse',
  ),
]);

function words(type: number, list: string): [string, number][] {
  return list.split(' ').map((word) => [word, type]);
}

/** Functions whose only use in a request is to make the database wait (time-based blind SQLi). */
export const DELAY_FUNCTIONS: ReadonlySet<string> = new Set([
  'sleep',
  'benchmark',
  'pg_sleep',
  'pg_sleep_for',
  'dbms_lock.sleep',
  'dbms_pipe.receive_message',
  'dbms_session.sleep',
  'randomblob',
  'sys.dbms_lock.sleep',
]);

/** Functions that read the server, the file system or the network: their call in a value is an attack. */
export const PROBE_FUNCTIONS: ReadonlySet<string> = new Set([
  'version',
  'database',
  'schema',
  'user',
  'current_user',
  'system_user',
  'session_user',
  'load_file',
  'extractvalue',
  'updatexml',
  'utl_http.request',
  'utl_inaddr.get_host_address',
  'utl_inaddr.get_host_name',
  'ctxsys.drithsx.sn',
  'dbms_xmlgen.getxml',
  'xp_cmdshell',
  'master..xp_cmdshell',
  'master.dbo.xp_cmdshell',
  'xp_dirtree',
  'master..xp_dirtree',
  'sys_eval',
  'sys_exec',
  'pg_read_file',
  'pg_ls_dir',
  'lo_import',
  'current_setting',
  'group_concat',
  'make_set',
  'name_const',
  'exp',
  'gtid_subset',
  'json_keys',
  'sqlite_version',
  'load_extension',
]);

/** Tables and schemas that only an attacker enumerating the database asks for. */
export const SYSTEM_TABLES: ReadonlySet<string> = new Set([
  'information_schema',
  'sysobjects',
  'syscolumns',
  'sysusers',
  'sysdatabases',
  'sys.objects',
  'sys.tables',
  'sys.columns',
  'sys.databases',
  'sys.sql_logins',
  'sys.all_users',
  'sys.user$',
  'master.sys',
  'master..sysdatabases',
  'mysql.user',
  'mysql.db',
  'mysql.innodb_table_stats',
  'mysql.innodb_index_stats',
  'pg_catalog',
  'pg_shadow',
  'pg_user',
  'pg_group',
  'pg_roles',
  'pg_database',
  'pg_tables',
  'all_tables',
  'all_tab_columns',
  'all_users',
  'user_tables',
  'user_tab_columns',
  'dba_users',
  'dba_tables',
  'dba_role_privs',
  'v$version',
  'sqlite_master',
  'sqlite_schema',
  'sqlite_temp_master',
  'msysobjects',
  'msysaccessobjects',
]);

/** Prefix operators. */
export const UNARY_OPERATORS: ReadonlySet<string> = new Set(['-', '+', '!', '~', 'not']);
export const COMPARISONS: ReadonlySet<string> = wordSet(
  '= == < > <= >= <> != <=> !< !> like rlike ilike regexp is in between sounds glob match',
);
/** Comparisons that make a tautology of two literals (`1=1`, `'a' LIKE 'a'`, `NULL IS NULL`). */
export const EQUALITIES: ReadonlySet<string> = wordSet(
  '= == <=> like rlike ilike regexp is sounds glob match in',
);
/** What `DROP`, `CREATE`, `ALTER` act on. */
export const OBJECT_KINDS: ReadonlySet<string> = wordSet(
  'table database schema procedure function view index trigger user login column tablespace event',
);
/** What `GRANT` and `REVOKE` give. */
export const PRIVILEGES: ReadonlySet<string> = wordSet(
  'all select insert update delete execute exec connect resource dba usage create alter drop file process super references index',
);
/** Keywords that start or shape a clause and so can never be an operand. */
export const CLAUSE_WORDS: ReadonlySet<string> = wordSet(
  'from where into values set as by order group having limit offset top distinct all join inner outer cross ' +
    'natural on using when then else end asc desc with if exists to for begin while elseif returns go',
);
export const JOIN_WORDS: ReadonlySet<string> = wordSet('join inner outer left right cross natural full');

function wordSet(list: string): ReadonlySet<string> {
  return new Set(list.split(' '));
}
