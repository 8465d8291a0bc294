/** The healthcare tailnet as code: operations admins, a developer team, tagged servers, a subnet router into the clinic LAN. */
import { App, DataResource, TerraformOutput, TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { AclRule, Autogroup, Group, Node, PreAuthKey, SubnetRoute, Tag, Tailnet, User } from '../../provider/constructs/index.ts';

/** Where the server is: from the environment, so CI can point the stack at its own server. */
export interface HealthcareOptions {
  /** Default $TAILPLANE_URL. The API key is never synthesized: the provider reads $TAILPLANE_API_KEY at plan time. */
  readonly serverUrl?: string;
  /** The tailscale CLI that enrolls the router, with any flags it needs (e.g. --socket). Default $TAILSCALE_BIN or tailscale. */
  readonly tailscale?: string;
}

export class HealthcareStack extends TerraformStack {
  readonly tailnet: Tailnet;
  readonly routerKey: PreAuthKey;
  readonly groups: { readonly ops: Group; readonly devs: Group };
  readonly tags: { readonly db: Tag; readonly web: Tag; readonly router: Tag; readonly testEnv: Tag };

  constructor(scope: Construct, id: string, options: HealthcareOptions = {}) {
    super(scope, id);
    const serverUrl = options.serverUrl ?? process.env.TAILPLANE_URL ?? 'http://127.0.0.1:8080';
    const tailnet = (this.tailnet = new Tailnet(this, 'tailnet', {
      serverUrl,
      dns: {
        magicDns: true,
        baseDomain: 'clinic.tailnet.internal',
        nameservers: ['1.1.1.1', '9.9.9.9'],
        searchDomains: ['clinic.lan'],
        splitDns: { 'clinic.lan': ['10.20.0.53'] },
        extraRecords: [{ name: 'records.clinic.lan', type: 'A', value: '10.20.0.80' }],
      },
    }));

    const ngozi = new User(tailnet, 'ngozi', { displayName: 'Ngozi Okafor', email: 'ngozi@clinic.example' });
    const emeka = new User(tailnet, 'emeka', { displayName: 'Emeka Eze', email: 'emeka@clinic.example' });
    const uzo = new User(tailnet, 'uzo', { displayName: 'Uzo Adeyemi', email: 'uzo@clinic.example' });

    const ops = new Group(tailnet, 'operationadmins', { members: [ngozi, emeka] });
    const devs = new Group(tailnet, 'uzodevelopers', { members: [uzo] });

    const db = new Tag(tailnet, 'db', { owners: [ops] });
    const web = new Tag(tailnet, 'web', { owners: [ops] });
    const router = new Tag(tailnet, 'router', { owners: [ops] });
    // Developers tag their own test machines.
    const testEnv = new Tag(tailnet, 'testenv', { owners: [ops, devs] });
    this.groups = { ops, devs };
    this.tags = { db, web, router, testEnv };

    // The clinic router: enrolled by this stack (below), adopted once it registers, its LAN route approved and named
    // for rules, and removed from the tailnet again on destroy.
    const routerNode = new Node(tailnet, 'clinic-router', {
      hostname: 'clinic-router',
      tags: [router],
      keyExpiryDisabled: true,
      waitFor: '5m',
      removeOnDestroy: true,
    });
    const clinicLan = new SubnetRoute(routerNode, 'clinic-lan', { prefix: '10.20.0.0/16', name: 'clinic-lan', autoApprovers: [router] });

    // Access: operations everywhere; developers the test environment and the web front ends; servers their dependencies.
    ops.canReach(Tailnet.any);
    devs.canReach(testEnv, web.ports(80, 443));
    web.canReach(db.port(5432), clinicLan.port(443));
    new AclRule(tailnet, 'own-devices', { src: [Autogroup.member], dst: [Autogroup.self], description: 'everyone reaches their own devices' });

    ops.canSsh([web, db, router], { as: ['root', Autogroup.nonroot], check: '12h' });
    devs.canSsh(testEnv, { as: [Autogroup.nonroot] });

    // The intended access, pinned: the server refuses a policy that breaks these.
    tailnet.test(ops).accepts(db.port(5432), clinicLan.port(443), router.port(22));
    tailnet.test(devs).accepts(web.port(443), testEnv.port(8080)).denies(db.port(5432), clinicLan.port(443), web.port(22));
    tailnet.test(web).accepts(db.port(5432), clinicLan.port(443)).denies(router.port(22));
    tailnet.test(db).denies(web.port(443), clinicLan.port(443));

    // Enrolment: a one-time tagged key for the router, and the local command that enrolls the machine with it.
    // terraform_data is Terraform's built-in home for provisioners, so offline CI needs no hashicorp/null provider.
    this.routerKey = new PreAuthKey(tailnet, 'router-key', { tags: [router] });
    new PreAuthKey(tailnet, 'uzo-laptop-key', { user: uzo, reusable: true });
    const tailscale = options.tailscale ?? process.env.TAILSCALE_BIN ?? 'tailscale';
    new DataResource(this, 'enroll-router', {
      triggersReplace: { key_id: this.routerKey.resource.id },
      provisioners: [
        {
          type: 'local-exec',
          // The key goes through the environment: Terraform never prints it, and it stays out of the command text.
          command: `${tailscale} up --login-server ${serverUrl} --auth-key "$TS_AUTH_KEY" --hostname clinic-router --advertise-routes 10.20.0.0/16 --advertise-tags ${router.alias}`,
          environment: { TS_AUTH_KEY: this.routerKey.key },
        },
      ],
    });
    new TerraformOutput(this, 'router_node_id', { value: routerNode.nodeId });
  }
}

if (process.argv[1]?.endsWith('examples/healthcare/main.ts')) {
  const app = new App();
  new HealthcareStack(app, 'healthcare');
  app.synth();
}
