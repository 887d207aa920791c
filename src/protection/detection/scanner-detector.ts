import { type ClassDetector, IN_PATH, IN_USER_AGENT, type Subject } from './subject.ts';

/** Security tools that announce themselves in the User-Agent (python-requests is a library, not one). */
const TOOL_USER_AGENT = new RegExp(
  String.raw`\b(?:sqlmap|nikto|nmap|masscan|zgrab|nuclei|wpscan|dirbuster|gobuster|ffuf|feroxbuster|dirb|` +
    'acunetix|nessus|openvas|w3af|arachni|skipfish|whatweb|wfuzz|commix|xsstrike|dalfox|netsparker|' +
    'appscan|havij|jaeles|zaproxy|owasp[ _-]?zap|fimap|sqlninja|bbqsql|paros|webinspect|' +
    String.raw`burpcollaborator|oastify|interact\.sh|fuzz faster u fool|morfeus|zmeu|jorgee)\b`,
  'i',
);

/** Paths that only exist to be probed for: secrets, VCS metadata, admin consoles, debug endpoints. */
const PROBE_PATH = new RegExp(
  [
    String.raw`/\.(?:env(?:\.[\w-]+)?|git|svn|hg|bzr|ds_store|idea|vscode|aws|ssh|htaccess|htpasswd|npmrc|dockerenv|bash_history|docker)(?:/|$)`,
    String.raw`/(?:wp-admin|wp-login\.php|wp-content|wp-includes|xmlrpc\.php|wp-config\.php)`,
    String.raw`/(?:phpmyadmin|pma|myadmin|mysqladmin|adminer(?:\.php)?|phpinfo\.php|info\.php)(?:/|$)`,
    '/(?:server-status|server-info|jmx-console|web-console|manager/html|solr/admin|hnap1|boaform)(?:/|$)',
    '/actuator(?:/|$)',
    '/cgi-bin/',
    '/vendor/phpunit/',
    String.raw`/(?:eval-stdin|shell|cmd|c99|r57|webshell)\.php`,
    String.raw`\.(?:bak|old|orig|backup|swp|save|sql|sql\.gz|sql\.zip)$|~$`,
    String.raw`/(?:backup|dump|db|database|site|www|web|htdocs|public_html)\.(?:zip|tar|tar\.gz|tgz|rar|7z|gz|sqlite)$`,
  ].join('|'),
  'i',
);

const SCORE = { tool: 80, probePath: 70 } as const;

/**
 * Scanners: a security tool's User-Agent, or a request for a path that only exists to be probed
 * (`/.env`, `/.git/config`, `/wp-login.php`, `/phpmyadmin`, `/actuator/env`, `/backup.sql`).
 * Looks at the path and the User-Agent only.
 */
export const scannerDetector: ClassDetector = {
  attackClass: 'scanner',
  scope: IN_PATH | IN_USER_AGENT,
  inspectsPlainWord: () => true,
  score(subject: Subject): number {
    const text = subject.text;
    const match = subject.where & IN_USER_AGENT ? TOOL_USER_AGENT.exec(text) : PROBE_PATH.exec(text);
    if (match === null) return 0;
    subject.mark(match.index, match.index + match[0].length + 10);
    return subject.where & IN_USER_AGENT ? SCORE.tool : SCORE.probePath;
  },
};
