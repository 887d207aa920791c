/**
 * Vocabulary of the commands an injected shell runs: reconnaissance, network, interpreters and
 * system tools of Unix and Windows. Vocabulary only: the detector needs them in a command
 * position (start, after a separator, in a substitution) and, for ordinary words, with
 * shell-like arguments.
 */

/** Names no one writes in prose: seeing one in a command position is enough. */
export const DISTINCTIVE_COMMANDS: ReadonlySet<string> = new Set(
  (
    'whoami ifconfig ipconfig uname netstat nslookup wget curl nc ncat netcat bash sh zsh ksh csh tcsh dash ' +
    'powershell pwsh cmd python2 python3 telnet nmap systeminfo sysinfo tasklist xterm ' +
    'taskkill netsh reg wmic certutil bitsadmin chmod chown chgrp mkfifo mknod passwd useradd usermod crontab ' +
    'base64 xxd busybox hostname printenv getent pwd ls rm cp mv gcc tftp ftp scp rsync socat sudo nohup ' +
    'xargs awk gawk sed grep egrep fgrep tee dd openssl cscript wscript mshta rundll32 regsvr32 schtasks ' +
    'icacls cacls attrib sc net1 msiexec ver vol uptime lsof ifup ipfw iptables route arp traceroute tracert ' +
    'pathping getmac whoami.exe qwinsta quser'
  ).split(' '),
);

/** Commands that are also English words: they need arguments that only a shell would take. */
export const WORD_COMMANDS: ReadonlySet<string> = new Set(
  (
    'cat type dir id ps ping sleep echo kill net more less head tail find time exit which where whois dig ' +
    'host env set timeout start call del copy move mkdir rmdir touch tree file sort print read wait who ' +
    'last df du mount free top eval exec source export alias history shutdown reboot halt logout su ' +
    'node java open tar zip unzip gzip make ssh chdir cd perl python php ruby lua printf'
  ).split(' '),
);

/** Commands that do something useful without arguments (`| id`, `;pwd;`); others need arguments. */
export const USEFUL_ALONE: ReadonlySet<string> = new Set(
  (
    'id pwd whoami ls dir ps env set printenv uname ifconfig ipconfig netstat hostname systeminfo sysinfo ' +
    'tasklist ver vol who w last uptime df mount free top history reboot shutdown halt logout route arp ' +
    'getmac qwinsta quser phpinfo exit'
  ).split(' '),
);

/** Commands that take a number (`sleep 5`, `ping -n 10`). */
export const NUMERIC_ARGUMENT_COMMANDS: ReadonlySet<string> = new Set([
  'sleep',
  'timeout',
  'ping',
  'kill',
  'wait',
]);

/** Recon commands run alone (`whoami`, `ipconfig`) as the whole value. */
export const ALONE_COMMANDS: ReadonlySet<string> = new Set([
  'whoami',
  'ifconfig',
  'ipconfig',
  'uname',
  'netstat',
  'systeminfo',
  'sysinfo',
  'pwd',
  'printenv',
  'tasklist',
  'getmac',
]);

/** Sub-commands of `net` (Windows). */
export const NET_SUBCOMMANDS: ReadonlySet<string> = new Set([
  'user',
  'users',
  'view',
  'localgroup',
  'group',
  'share',
  'use',
  'start',
  'stop',
  'accounts',
  'session',
  'config',
]);

/** Shells whose `-c`/`/c` argument is itself a command line. */
export const SHELLS: ReadonlySet<string> = new Set([
  'bash',
  'sh',
  'zsh',
  'ksh',
  'dash',
  'cmd',
  'powershell',
  'pwsh',
]);
