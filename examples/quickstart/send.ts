/**
 * Sends tasks and an event with the quick start's app, and reads a result. Needs a worker running
 * (see app.ts). Run: npx tsx examples/quickstart/send.ts
 */
import { add, app, userRegistered } from './app.js';

const result = await add.delay(2, 3); // AsyncResult<number>
console.log(await result.get({ timeout: '5s' })); // 5

await add.applyAsync({ args: [2, 3], countdown: '10s', priority: 9 });
const published = await userRegistered.publish({ id: '42', email: 'ada@example.com' });
console.log(await published.results.get('emails.welcome')?.get({ timeout: '5s' }));

await app.close();
