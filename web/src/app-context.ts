import { createContext, useContext } from 'solid-js';
import type { AppClient } from './graphql/client';

export const AppClientContext = createContext<AppClient>();

export function useAppClient(): AppClient {
  const app = useContext(AppClientContext);
  if (!app) throw new Error('AppClientContext is missing');
  return app;
}
