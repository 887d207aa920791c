import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BastionConfig } from '../config/schema.ts';
import { urlPath } from '../core/url-path.ts';
import { errorBody } from '../server/error-handler.ts';
import { routeOf } from '../server/route-auth.ts';
import {
  ATTACK_CLASSES,
  type AttackClass,
  createDetector,
  type Detector,
  type Finding,
} from './detection/index.ts';
import { ProtectionErrors } from './errors.ts';
import type { SecurityEvents } from './security-events.ts';
import type { ThreatScores } from './threat-scores.ts';

/** What a class's findings do: refuse the request, only record it, or nothing (not inspected). */
export type DetectionMode = 'block' | 'monitor' | 'off';

/** A route's detection settings (`config.detection`), or `false` to inspect nothing. */
export type RouteDetection =
  | {
      mode?: DetectionMode;
      classes?: Partial<Record<AttackClass, DetectionMode>>;
      /** Locations that legitimately carry HTML or code: `body.content`, `body.snippets[]`, `body.html.*`. */
      exclude?: readonly string[];
    }
  | false;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Attack detection of the route: mode per class, excluded locations; `false` turns it off. */
    detection?: RouteDetection;
    /** Internal: the route's compiled detection plan (null: nothing to inspect). */
    bastionDetection?: DetectionPlan | null;
  }
}

/** A route's compiled detection: the detector and what each class's findings do. */
export interface DetectionPlan {
  detector: Detector;
  modes: Readonly<Record<AttackClass, DetectionMode>>;
}

const MAX_LOGGED_PATH = 2048;

/** Methods whose requests Fastify never reads a body for. */
const BODILESS = new Set(['GET', 'HEAD', 'TRACE']);

/**
 * Attack detection in the request pipeline, on every request, 404s included: GET and HEAD
 * requests in the entry hook, once the other admission checks pass; requests with a body after
 * the body is parsed and before it is validated (an attack in a field the schema would refuse is
 * still seen and recorded). Each route's plan — detector with its exclusions, mode per class — is compiled
 * when the route is registered; routes with the same settings share a detector. Findings are
 * stored as a security event (masked fragments) and add to the address's threat score; in block
 * mode (the default) the request gets 403 `request_blocked`.
 */
export class AttackDetection {
  readonly #config: BastionConfig['protection']['detection'];
  readonly #maxDepth: number;
  readonly #events: SecurityEvents;
  readonly #threat: ThreatScores;
  readonly #detectors = new Map<string, Detector>();
  readonly #defaultPlan: DetectionPlan | null;

  constructor(options: { config: BastionConfig; events: SecurityEvents; threat: ThreatScores }) {
    this.#config = options.config.protection.detection;
    // Every level a JSON body may have (deeper bodies are refused) is walked.
    this.#maxDepth = options.config.protection.limits.maxJsonDepth + 1;
    this.#events = options.events;
    this.#threat = options.threat;
    this.#defaultPlan = this.plan(undefined);
  }

  /** Compiles the plan for a route's settings (throws at start-up on a bad setting). */
  plan(route: RouteDetection | undefined): DetectionPlan | null {
    if (route === false) return null;
    const modes = {} as Record<AttackClass, DetectionMode>;
    for (const name of ATTACK_CLASSES) {
      modes[name] = route?.classes?.[name] ?? route?.mode ?? this.#config.classes[name] ?? this.#config.mode;
    }
    const classes = Object.fromEntries(ATTACK_CLASSES.map((name) => [name, modes[name] !== 'off']));
    if (!Object.values(classes).some(Boolean)) return null;
    const exclude = [...(route?.exclude ?? [])].sort();
    const key = JSON.stringify({ classes, exclude });
    let detector = this.#detectors.get(key);
    if (!detector) {
      detector = createDetector({ classes, exclude, maxDepth: this.#maxDepth });
      this.#detectors.set(key, detector);
    }
    return { detector, modes: Object.freeze(modes) };
  }

  /**
   * Compiles each route's plan. A GET, HEAD or TRACE request has no body, so {@link early} inspects it
   * in the entry hook; a route taking other methods gets a hook of its own that inspects the
   * request once its body is parsed (a route serving only GET pays for no extra hook).
   */
  install(app: FastifyInstance): void {
    const afterBody = this.afterBody;
    app.addHook('onRoute', (route) => {
      const setting = route.config?.detection;
      const plan = setting === undefined ? this.#defaultPlan : this.plan(setting);
      route.config = { ...route.config, bastionDetection: plan };
      if (plan !== null && [route.method].flat().some((method) => !BODILESS.has(method))) {
        // First among the route's own hooks: they may act on the body.
        route.preValidation = [afterBody, ...[route.preValidation ?? []].flat()];
      }
    });
  }

  /**
   * The hook that inspects a request with a body, once the body is parsed (install adds it to
   * routes; the not-found handler takes it as its `preValidation` option).
   */
  readonly afterBody = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const plan = BODILESS.has(request.method) ? null : this.#planOf(request);
    if (plan === null || this.inspect(request, reply, plan)) done();
  };

  /**
   * Inspects a GET, HEAD or TRACE request on its way in (called from the entry hook); other methods
   * wait for their body. Answers the request and returns false when a finding blocks it.
   */
  early(request: FastifyRequest, reply: FastifyReply): boolean {
    if (!BODILESS.has(request.method)) return true;
    const plan = this.#planOf(request);
    return plan === null || this.inspect(request, reply, plan);
  }

  #planOf(request: FastifyRequest): DetectionPlan | null {
    const plan = routeOf(request).bastionDetection;
    // Requests no route matched (the not-found handler) get the default plan.
    return plan === undefined ? this.#defaultPlan : plan;
  }

  /** Inspects one request; answers it and returns false when a finding blocks it. */
  inspect(request: FastifyRequest, reply: FastifyReply, plan: DetectionPlan): boolean {
    const findings = plan.detector.inspect({
      method: request.method,
      path: urlPath(request.url, MAX_LOGGED_PATH),
      query: request.query as Record<string, unknown>,
      headers: request.headers,
      body: request.body,
    });
    const reported = findings.filter((finding) => plan.modes[finding.class] !== 'off');
    if (reported.length === 0) return true;
    const blocked = reported.some((finding) => plan.modes[finding.class] === 'block');
    this.#record(request, reported, blocked);
    if (!blocked) return true;
    reply
      .code(ProtectionErrors.requestBlocked.status)
      .send(errorBody(ProtectionErrors.requestBlocked, request.id));
    return false;
  }

  #record(request: FastifyRequest, findings: Finding[], blocked: boolean): void {
    const strongest = findings.reduce((best, finding) => (finding.score > best.score ? finding : best));
    this.#events.record({
      kind: 'attack',
      attackClass: strongest.class,
      severity: strongest.score >= 90 ? 'high' : 'medium',
      clientIp: request.ip,
      method: request.method,
      route: request.routeOptions.url ?? null,
      requestId: request.id,
      blocked,
      details: {
        findings: findings.map(({ class: attackClass, score, location, fragment }) => ({
          class: attackClass,
          score,
          location,
          fragment,
        })),
        path: urlPath(request.url, 256),
        user_agent:
          typeof request.headers['user-agent'] === 'string'
            ? request.headers['user-agent'].slice(0, 256)
            : null,
      },
    });
    this.#threat.add(request.ip, 'attack');
    request.log.warn(
      {
        event: 'attack_detected',
        blocked,
        findings: findings.map((finding) => ({
          class: finding.class,
          location: finding.location,
          score: finding.score,
        })),
      },
      blocked ? 'request blocked: attack detected' : 'attack detected (monitor mode)',
    );
  }
}
