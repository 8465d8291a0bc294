/** The project's cdktf app (cdktf.json `app`): the example tailnets as stacks; `cdktf deploy healthcare` picks one. */
import { App } from 'cdktf';
import { HealthcareStack } from '../examples/healthcare/main.ts';
import { QuickstartStack } from '../examples/quickstart/main.ts';

const app = new App();
new HealthcareStack(app, 'healthcare');
new QuickstartStack(app, 'quickstart');
app.synth();
