/**
 * The healthcare stack with one extra access test that contradicts its rules (developers reaching the database):
 * the cdktf end-to-end test points cdktf.json here to check that such a policy fails at plan time.
 */
import { App } from 'cdktf';
import { HealthcareStack } from '../../examples/healthcare/main.ts';

const app = new App();
const stack = new HealthcareStack(app, 'healthcare');
stack.tailnet.test(stack.groups.devs).accepts(stack.tags.db.port(5432));
app.synth();
