import { Provider } from '@urql/solid';
import { Show } from 'solid-js';
import { render } from 'solid-js/web';
import { App } from './App';
import { AppClientContext } from './app-context';
import { createAppClient } from './graphql/client';
import './styles.css';

const appClient = createAppClient();
const root = document.getElementById('root');
if (!root) throw new Error('#root is missing from index.html');

render(
  () => (
    <AppClientContext.Provider value={appClient}>
      {/* A new client per session: nothing cached for one customer shows for the next. */}
      <Show when={appClient.client()} keyed>
        {(client) => (
          <Provider value={client}>
            <App />
          </Provider>
        )}
      </Show>
    </AppClientContext.Provider>
  ),
  root,
);
