/** The smallest tailnet as code: one user, one reusable key for their machines, everyone reaches everything. */
import { App, TerraformOutput, TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { PreAuthKey, Tailnet, User } from '../../provider/constructs/index.ts';

export class QuickstartStack extends TerraformStack {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    // $TAILPLANE_URL here; the API key stays in $TAILPLANE_API_KEY, read by the provider, never synthesized.
    const tailnet = new Tailnet(this, 'tailnet', { serverUrl: process.env.TAILPLANE_URL });
    const alice = new User(tailnet, 'alice');
    alice.canReach(Tailnet.any);
    const key = new PreAuthKey(tailnet, 'alice-key', { user: alice, reusable: true });
    new TerraformOutput(this, 'auth_key', { value: key.key, sensitive: true });
  }
}

if (process.argv[1]?.endsWith('examples/quickstart/main.ts')) {
  const app = new App();
  new QuickstartStack(app, 'quickstart');
  app.synth();
}
